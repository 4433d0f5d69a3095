import type { Test } from 'tap';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { CosignCli } from '../../src/bundle/cosign.js';
import { run } from './engines.js';
import { scratch } from './fixture.js';

/*
 * Real cosign for the signing tests: TCPAO_COSIGN, else the static build of
 * scripts/build-apps (~/.cache/tcpao-proxy/apps/current/bin/cosign), else
 * cosign on PATH. Keys are generated fresh per run with a password, offline;
 * nothing talks to a transparency log.
 */

export const COSIGN_PASSWORD = 'correct horse battery staple';
const APPS_COSIGN = join(homedir(), '.cache', 'tcpao-proxy', 'apps', 'current', 'bin', 'cosign');

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The cosign executable to use, or the reason there is none. */
export function findCosign(): { readonly path: string } | { readonly reason: string } {
  const wanted = process.env.TCPAO_COSIGN;
  if (wanted !== undefined) return executable(wanted) ? { path: wanted } : { reason: `TCPAO_COSIGN=${wanted} is not an executable` };
  if (executable(APPS_COSIGN)) return { path: APPS_COSIGN };
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && executable(join(dir, 'cosign'))) return { path: join(dir, 'cosign') };
  }
  return { reason: `cosign is neither at ${APPS_COSIGN} (scripts/build-apps) nor on PATH; set TCPAO_COSIGN` };
}

/** PATH with cosign's directory first, so the bundle tool's `cosign` is this one. */
export function pathWithCosign(cosign: string): string {
  return `${dirname(cosign)}${delimiter}${process.env.PATH ?? ''}`;
}

export function cosignCli(cosign: string, password: string = COSIGN_PASSWORD): CosignCli {
  return new CosignCli('cosign', { PATH: pathWithCosign(cosign), HOME: process.env.HOME, COSIGN_PASSWORD: password });
}

export interface KeyPair {
  readonly key: string;
  readonly pub: string;
}

/** cosign generate-key-pair into a scratch dir, the password from COSIGN_PASSWORD. */
export async function generateKeyPair(t: Test, cosign: string, label: string): Promise<KeyPair> {
  const dir = scratch(t, `tcpao-cosign-${label}-`);
  const prefix = join(dir, label);
  const result = await run(cosign, ['generate-key-pair', '--output-key-prefix', prefix], { PATH: process.env.PATH, HOME: dir, COSIGN_PASSWORD });
  if (result.code !== 0) throw new Error(`cosign generate-key-pair failed: ${result.stderr.trim()}`);
  return { key: `${prefix}.key`, pub: `${prefix}.pub` };
}

export async function cosignVersion(cosign: string): Promise<string> {
  const result = await run(cosign, ['version', '--json']);
  if (result.code !== 0) return `unknown (${result.stderr.trim().split('\n')[0] ?? ''})`;
  return (JSON.parse(result.stdout) as { gitVersion?: string }).gitVersion ?? 'unknown';
}
