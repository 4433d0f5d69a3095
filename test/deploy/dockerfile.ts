/**
 * A small Dockerfile reader for the static checks: enough of the syntax the
 * two deploy images use (continuations, comments, FROM ... AS, COPY --from,
 * WORKDIR, exec-form ENTRYPOINT/CMD) to reason about the image layout.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

export function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  let pending = '';
  let startLine = 0;
  lines.forEach((raw, index) => {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (pending === '') startLine = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const whole = `${pending}${line}`.trim();
    pending = '';
    const match = /^(\S+)\s*(.*)$/s.exec(whole);
    if (match !== null) instructions.push({ keyword: (match[1] as string).toUpperCase(), args: (match[2] as string).replace(/\s+/g, ' '), line: startLine });
  });
  return instructions;
}

export function stages(instructions: readonly Instruction[]): Stage[] {
  const result: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(' ').filter((word) => !word.startsWith('--'));
      result.push({ image: image as string, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (result.length > 0) {
      (result[result.length - 1] as Stage).instructions.push(instruction);
    }
  }
  return result;
}

export interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly destination: string;
  readonly line: number;
}

/** COPY in shell form with optional --from/--chown/--chmod flags. */
export function parseCopy(instruction: Instruction): Copy {
  const words = instruction.args.split(' ');
  let from: string | undefined;
  const rest: string[] = [];
  for (const word of words) {
    if (word.startsWith('--from=')) from = word.slice('--from='.length);
    else if (!word.startsWith('--')) rest.push(word);
  }
  return { from, sources: rest.slice(0, -1), destination: rest[rest.length - 1] as string, line: instruction.line };
}

export function execForm(instruction: Instruction): string[] {
  const parsed: unknown = JSON.parse(instruction.args);
  if (!Array.isArray(parsed) || !parsed.every((word) => typeof word === 'string')) {
    throw new Error(`line ${instruction.line}: ${instruction.keyword} is not in exec form`);
  }
  return parsed as string[];
}

/** Every file under `dir` (relative to it). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...filesUnder(full).map((file) => path.join(entry, file)));
    else out.push(entry);
  }
  return out;
}

/** ARG defaults declared before the first FROM (the ones FROM lines may use). */
export function globalArgs(instructions: readonly Instruction[]): Map<string, string> {
  const args = new Map<string, string>();
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') break;
    if (instruction.keyword !== 'ARG') continue;
    const [name, value] = instruction.args.split('=', 2);
    args.set(name as string, value ?? '');
  }
  return args;
}

/** `${NAME}` and `$NAME` replaced by their values; unknown names stay as they are. */
export function expandArgs(text: string, args: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced?: string, bare?: string) => args.get((braced ?? bare) as string) ?? whole);
}
