/**
 * The wire verifier's own checks, on captures signed here from the RFC 5925
 * steps: it accepts every segment of a good conversation (SYN, SYN-ACK, data,
 * FIN, RST; IPv4 and IPv6; options in and out; past a sequence-number wrap),
 * and rejects every one given a wrong key, the other side's ids or the other
 * options setting. The lab's wire-conformance suite runs it on kernel-signed
 * segments.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { flipLastBit, swapSendIds, verifierUnavailable, verifyCapture, writeSignedCapture, type VerifierKey, type WireAlgorithm } from '../helpers/conformance.js';

const unavailable = verifierUnavailable();
const KEY = '00112233445566778899aabbccddeeff0102';
const KEY_16 = '000102030405060708090a0b0c0d0e0f';
const CLIENT_ID = 3;
const SERVER_ID = 9;
const SEGMENTS = 7;

function workDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'verify-tcpao-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Conversation {
  readonly alg: WireAlgorithm;
  readonly key: string;
  readonly ipv6?: boolean;
  readonly excludeOptions?: boolean;
  readonly wrap?: boolean;
}

function sign(dir: string, conversation: Conversation): { pcap: string; keys: VerifierKey[] } {
  const pcap = join(dir, 'conversation.pcap');
  const args = ['--alg', conversation.alg, '--key-hex', conversation.key, '--client-id', String(CLIENT_ID), '--server-id', String(SERVER_ID)];
  if (conversation.ipv6 === true) args.push('--ipv6');
  if (conversation.excludeOptions === true) args.push('--exclude-options');
  if (conversation.wrap === true) args.push('--wrap');
  writeSignedCapture(pcap, args);
  const [client, server] = conversation.ipv6 === true ? ['fd00:10::1', 'fd00:10::2'] : ['10.10.10.1', '10.10.10.2'];
  const keys = [
    { alg: conversation.alg, keyHex: conversation.key, includeOptions: conversation.excludeOptions !== true, sendIds: { [client]: CLIENT_ID, [server]: SERVER_ID } },
  ];
  return { pcap, keys };
}

const cases: readonly Conversation[] = [
  { alg: 'hmac-sha1', key: KEY },
  { alg: 'hmac-sha1', key: KEY, ipv6: true, excludeOptions: true },
  { alg: 'aes-128-cmac', key: KEY_16 },
  { alg: 'aes-128-cmac', key: KEY, ipv6: true },
  { alg: 'aes-128-cmac', key: KEY, excludeOptions: true, wrap: true },
  { alg: 'hmac-sha256', key: KEY, wrap: true },
];

for (const conversation of cases) {
  const name = `${conversation.alg}, ${conversation.key.length / 2}-byte key, IPv${conversation.ipv6 === true ? 6 : 4}, options ${conversation.excludeOptions === true ? 'excluded' : 'included'}${conversation.wrap === true ? ', past a wrap' : ''}`;
  t.test(name, { skip: unavailable }, async (t) => {
    const { pcap, keys } = sign(workDir(t), conversation);

    const good = verifyCapture(pcap, keys);
    t.equal(good.status, 0, `exit 0: ${good.summary.failures.join('; ')}`);
    t.equal(good.summary.segments, SEGMENTS);
    t.equal(good.summary.verified, SEGMENTS, 'every segment verifies');
    t.same(good.summary.flags, { syn: 1, syn_ack: 1, data: 2, fin: 1, rst: 1 }, 'SYN, SYN-ACK, data, FIN and RST each verified');
    t.equal(good.summary.with_other_options, SEGMENTS, 'every segment counts as carrying options besides TCP-AO (timestamps)');
    t.equal(good.summary.sne_max, conversation.wrap === true ? 1 : 0, 'the sequence-number extension follows the wrap');

    const wrongKey = verifyCapture(pcap, keys.map((key) => ({ ...key, keyHex: flipLastBit(key.keyHex) })));
    t.equal(wrongKey.status, 1, 'a key one bit off: exit 1');
    t.equal(wrongKey.summary.verified, 0, 'a key one bit off verifies nothing');
    t.equal(wrongKey.summary.failed, SEGMENTS);
    t.match(wrongKey.summary.failures[0], /MAC mismatch/);

    const swapped = verifyCapture(pcap, swapSendIds(keys));
    t.equal(swapped.summary.verified, 0, "the other side's ids verify nothing");
    t.match(swapped.summary.failures[0], /KeyID \d+ matches 0 of the keys/);

    const otherOptions = verifyCapture(pcap, keys.map((key) => ({ ...key, includeOptions: !key.includeOptions })));
    t.equal(otherOptions.summary.verified, 0, 'the other options setting verifies nothing (every segment carries timestamps)');
  });
}

t.test('a capture that starts after the handshake cannot be verified', { skip: unavailable }, async (t) => {
  const dir = workDir(t);
  const { pcap, keys } = sign(dir, { alg: 'hmac-sha1', key: KEY });
  const tail = join(dir, 'tail.pcap');
  const cut = spawnSyncPython(`from scapy.utils import rdpcap, wrpcap; wrpcap(${JSON.stringify(tail)}, rdpcap(${JSON.stringify(pcap)})[2:])`);
  t.equal(cut, 0);
  const result = verifyCapture(tail, keys);
  t.equal(result.status, 1);
  t.equal(result.summary.verified, 0);
  t.match(result.summary.failures[0], /ISNs are unknown/);
});

t.test('an empty capture is not a pass', { skip: unavailable }, async (t) => {
  const dir = workDir(t);
  const empty = join(dir, 'empty.pcap');
  t.equal(spawnSyncPython(`from scapy.utils import wrpcap; wrpcap(${JSON.stringify(empty)}, [])`), 0);
  const result = verifyCapture(empty, [{ alg: 'hmac-sha1', keyHex: KEY, includeOptions: true, sendIds: { '10.10.10.1': 1, '10.10.10.2': 1 } }]);
  t.equal(result.summary.segments, 0);
  t.equal(result.status, 1, 'no segment verified means failure');
});

function spawnSyncPython(code: string): number | null {
  return spawnSync('/usr/bin/python3', ['-c', code]).status;
}
