import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { TcpAoError } from '../errors.js';

/** One line of a SHA256SUMS file: `<64 hex>  <relative path>` (sha256sum text mode). */
export interface SumEntry {
  readonly path: string;
  readonly sha256: string;
}

export const SUMS_FILE = 'SHA256SUMS';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && SHA256_HEX.test(value);
}

/**
 * A bundle path is relative, uses '/', and has no '.', '..', empty segments or
 * characters that sha256sum would escape, so the same text works for our
 * verifier and for `sha256sum -c`.
 */
export function isSafeBundlePath(path: unknown): path is string {
  if (typeof path !== 'string' || path.length === 0 || path.length > 255) return false;
  if (!/^[A-Za-z0-9._+@/-]+$/.test(path)) return false;
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function formatSums(entries: readonly SumEntry[]): string {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return sorted.map((e) => `${e.sha256}  ${e.path}\n`).join('');
}

/**
 * Parse SHA256SUMS strictly: every line must be `<hex>  <path>` (or the binary
 * marker `<hex> *<path>`), paths must be safe and unique. Throws
 * ERR_TCPAO_BUNDLE_SUMS_INVALID naming the first bad line.
 */
export function parseSums(text: string): SumEntry[] {
  if (text.length > 0 && !text.endsWith('\n')) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_SUMS_INVALID', `${SUMS_FILE}: the last line has no newline; the file looks truncated`);
  }
  const entries: SumEntry[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, index) => {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (match === null) {
      throw new TcpAoError('ERR_TCPAO_BUNDLE_SUMS_INVALID', `${SUMS_FILE} line ${index + 1}: expected "<sha256>  <path>"`);
    }
    const [, sha256, path] = match as unknown as [string, string, string];
    if (!isSafeBundlePath(path)) {
      throw new TcpAoError('ERR_TCPAO_BUNDLE_SUMS_INVALID', `${SUMS_FILE} line ${index + 1}: path ${JSON.stringify(path)} is not a plain relative path`);
    }
    if (seen.has(path)) {
      throw new TcpAoError('ERR_TCPAO_BUNDLE_SUMS_INVALID', `${SUMS_FILE} line ${index + 1}: ${path} is listed twice`);
    }
    seen.add(path);
    entries.push({ path, sha256 });
  });
  if (entries.length === 0) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_SUMS_INVALID', `${SUMS_FILE} lists no files`);
  }
  return entries;
}
