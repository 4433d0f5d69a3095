/**
 * The independent check of a captured TCP-AO wire: test/fixtures/verify_tcpao.py
 * recomputes every segment's MAC with scapy's RFC 5925/5926 code (and, for
 * hmac-sha256, the RFC 5925 KDF from Python's standard library), apart from
 * the kernel that signed it.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO } from './lab.js';

export const VERIFIER = join(REPO, 'test', 'fixtures', 'verify_tcpao.py');
export const SIGNER = join(REPO, 'test', 'fixtures', 'sign_tcpao_capture.py');
const PYTHON = '/usr/bin/python3';

export type WireAlgorithm = 'hmac-sha1' | 'aes-128-cmac' | 'hmac-sha256';

/** One master key tuple as the verifier sees it: which KeyID each address sends it with. */
export interface VerifierKey {
  readonly alg: WireAlgorithm;
  readonly keyHex: string;
  readonly maclen?: number;
  readonly includeOptions: boolean;
  readonly sendIds: Readonly<Record<string, number>>;
}

export interface VerifierSummary {
  readonly segments: number;
  readonly verified: number;
  readonly failed: number;
  readonly connections: number;
  readonly flags: { readonly syn: number; readonly syn_ack: number; readonly data: number; readonly fin: number; readonly rst: number };
  /** "<sender address>><KeyID>" to the count of segments verified with it. */
  readonly key_ids: Readonly<Record<string, number>>;
  readonly sne_max: number;
  /** Verified segments with TCP options besides TCP-AO: the ones whose MAC the options setting changes. */
  readonly with_other_options: number;
  readonly algorithms: readonly string[];
  readonly failures: readonly string[];
}

export interface Verification {
  readonly status: number | null;
  readonly summary: VerifierSummary;
}

/** Why the verifier cannot run here, or undefined when it can. */
export function verifierUnavailable(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import scapy.contrib.tcpao, cryptography.hazmat.primitives.cmac'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `${PYTHON} cannot run (${probe.error.message}); run scripts/install-deps`;
  if (probe.status !== 0) return 'python3-scapy or python3-cryptography is not installed; run scripts/install-deps';
  return undefined;
}

/** Runs the verifier over `pcap` with `keys` (written beside it) and returns its summary. */
export function verifyCapture(pcap: string, keys: readonly VerifierKey[]): Verification {
  const keysFile = `${pcap}.keys.json`;
  const document = {
    keys: keys.map((key) => ({
      alg: key.alg,
      key_hex: key.keyHex,
      maclen: key.maclen ?? 12,
      include_options: key.includeOptions,
      send_ids: key.sendIds,
    })),
  };
  writeFileSync(keysFile, JSON.stringify(document), { mode: 0o600 });
  const result = spawnSync(PYTHON, [VERIFIER, '--pcap', pcap, '--keys', keysFile], { encoding: 'utf8', timeout: 900_000, maxBuffer: 16 * 1024 * 1024 });
  if (result.error !== undefined) throw new Error(`verify_tcpao.py did not run: ${result.error.message}`);
  const lastLine = result.stdout.trim().split('\n').pop() ?? '';
  let summary: VerifierSummary;
  try {
    summary = JSON.parse(lastLine) as VerifierSummary;
  } catch {
    throw new Error(`verify_tcpao.py exited ${result.status ?? result.signal} without a summary: ${result.stderr.trim()}`);
  }
  return { status: result.status, summary };
}

/** The same keys with every address sending the other side's KeyID: the control that must reject everything. */
export function swapSendIds(keys: readonly VerifierKey[]): VerifierKey[] {
  return keys.map((key) => {
    const [first, second] = Object.entries(key.sendIds);
    if (first === undefined || second === undefined) throw new Error('swapSendIds needs two addresses per key');
    return { ...key, sendIds: { [first[0]]: second[1], [second[0]]: first[1] } };
  });
}

/** The key with its last bit flipped. */
export function flipLastBit(keyHex: string): string {
  const bytes = Buffer.from(keyHex, 'hex');
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
  return bytes.toString('hex');
}

export function writeSignedCapture(out: string, args: readonly string[]): void {
  const result = spawnSync(PYTHON, [SIGNER, '--out', out, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`sign_tcpao_capture.py failed: ${result.stderr.trim()}`);
}
