/**
 * Wire conformance against an implementation that is not the kernel's: the
 * captured wire leg goes to test/functional/fixtures/verify_tcpao.py, which
 * checks every segment's MAC with scapy.contrib.tcpao (RFC 5925/5926, written
 * apart from Linux). Key bytes reach it on stdin, never in argv.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { REPO } from './lab';

/** Debian's python3 carries python3-scapy; a python3 earlier on PATH (pyenv) may not. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
const VERIFIER = join(REPO, 'test', 'functional', 'fixtures', 'verify_tcpao.py');

export type WireAlgorithm = 'hmac-sha1' | 'aes-128-cmac' | 'hmac-sha256';

/** One master key as the verifier needs it: the segments `sender` signs with KeyID sendId. */
export interface VerifierKey {
  readonly sender: string;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: WireAlgorithm;
  readonly key: Buffer;
  readonly includeOptions: boolean;
  readonly maclen: number;
}

export interface Verdict {
  readonly segments: number;
  readonly verified: number;
  readonly rejected: number;
  /** Verified segments by kind: syn, syn-ack, data, ack, fin, rst. */
  readonly kinds: Readonly<Record<string, number>>;
  /** Verified segments by "sender/KeyID". */
  readonly keyIds: Readonly<Record<string, number>>;
  /** The first rejections, each with its reason. */
  readonly rejections: readonly string[];
}

const wireKey = (key: VerifierKey) => ({
  sender: key.sender,
  send_id: key.sendId,
  recv_id: key.recvId,
  algorithm: key.algorithm,
  key_hex: key.key.toString('hex'),
  include_options: key.includeOptions,
  maclen: key.maclen,
});

/**
 * Runs the independent verifier over a capture file, once for all checks:
 * each check is a set of keys judged on its own (a negative control is one more check).
 */
export function verifyCapture<Name extends string>(pcap: string, checks: Readonly<Record<Name, readonly VerifierKey[]>>): Record<Name, Verdict> {
  const request = {
    pcap,
    checks: Object.fromEntries(Object.entries<readonly VerifierKey[]>(checks).map(([name, keys]) => [name, keys.map(wireKey)])),
  };
  const run = spawnSync(SYSTEM_PYTHON, [VERIFIER], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: 1_800_000,
  });
  if (run.status !== 0) throw new Error(`verify_tcpao.py failed (${run.status ?? run.signal}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<Name, Verdict>;
}

/** Why the independent verifier cannot run here, or undefined when it can. */
export function verifierMissing(): string | undefined {
  const run = spawnSync(SYSTEM_PYTHON, ['-c', 'import scapy.contrib.tcpao, cryptography.hazmat.primitives.cmac'], { encoding: 'utf8' });
  if (run.error !== undefined) return `${SYSTEM_PYTHON} cannot run (${run.error.message}): install python3-scapy and python3-cryptography`;
  if (run.status !== 0) return `${SYSTEM_PYTHON} lacks scapy.contrib.tcpao or cryptography: install python3-scapy and python3-cryptography`;
  return undefined;
}

/**
 * What tshark's own dissector counts in the capture: TCP segments, and TCP-AO
 * KeyIDs by "sender/KeyID". A second reading of the file, so the verifier
 * cannot skip segments unnoticed.
 */
export function tsharkKeyIds(pcap: string): { readonly segments: number; readonly keyIds: Readonly<Record<string, number>> } {
  const run = spawnSync(
    'tshark',
    ['-r', pcap, '-n', '-Y', 'tcp', '-T', 'fields', '-E', 'separator=/t', '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'tcp.options.ao.keyid'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 900_000 },
  );
  if (run.status !== 0) throw new Error(`tshark -r ${pcap} failed (${run.status ?? run.signal}): ${run.stderr}`);
  const keyIds: Record<string, number> = {};
  let segments = 0;
  for (const line of run.stdout.split('\n')) {
    if (line.trim() === '') continue;
    segments += 1;
    const [ipv4 = '', ipv6 = '', keyId = ''] = line.split('\t');
    const name = `${ipv4 === '' ? ipv6 : ipv4}/${keyId === '' ? 'none' : keyId}`;
    keyIds[name] = (keyIds[name] ?? 0) + 1;
  }
  return { segments, keyIds };
}

/** The keys of both senders with each key's ids swapped: what a verifier holding the other side's ids sees. */
export function swappedIds(keys: readonly VerifierKey[]): VerifierKey[] {
  return keys.map((key) => ({ ...key, sendId: key.recvId, recvId: key.sendId }));
}
