/**
 * What a message may repeat of the operator's input. A rejected value may be a
 * key pasted into the wrong field (`openssl rand -hex 16` makes a 32-character
 * token that fits most fields), and messages reach stderr, the reload_failed
 * log line and /status. So messages repeat only members of closed sets (the
 * allowed values, the known key names), numbers and parsed addresses; any
 * other text is described by its length.
 */

/**
 * True for text shaped like generated key material: 16 or more hex digits, or
 * 20 or more characters of standard base64 mixing lower case, upper case and
 * digits. Identifiers and paths people write ("bmp-wire", "TCPAO_KEY_2",
 * "/run/secrets/bmp.key") do not match.
 */
export function looksLikeKeyMaterial(text: string): boolean {
  if (text.length >= 16 && /^[0-9a-fA-F]+$/.test(text)) return true;
  return text.length >= 20 && /^[A-Za-z0-9+/]+={0,2}$/.test(text) && /[a-z]/.test(text) && /[A-Z]/.test(text) && /[0-9]/.test(text);
}

/** "32 characters": how a value that is not repeated is described. */
export function describeLength(text: string): string {
  const length = [...text].length;
  return `${length} character${length === 1 ? '' : 's'}`;
}

/**
 * The member of `candidates` that `word` is a near miss of (case, a typo, a
 * unit suffix such as "_secs" left off or added), or undefined. Only a near
 * miss is worth naming, and it carries at most a few characters of the input.
 */
export function nearMiss(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const extended = candidates.find(
    (candidate) => lower.length >= 4 && Math.abs(candidate.length - lower.length) <= 8 && (candidate.startsWith(lower) || lower.startsWith(candidate)),
  );
  if (extended !== undefined) return extended;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.min(3, Math.max(2, Math.floor(word.length / 4))) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}
