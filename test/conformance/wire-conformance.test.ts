/**
 * Wire conformance against an implementation that is not Linux's: the wire leg
 * between initiator and terminator is captured and every segment's TCP-AO MAC
 * is recomputed by test/fixtures/verify_tcpao.py (scapy's RFC 5925/5926 code;
 * hmac-sha256 by the RFC 5925 KDF from Python's standard library). Each bulk
 * case sends 1 MiB through the chain; the app replies 256 KiB and answers the
 * FIN with a reset, so the capture holds a SYN, a SYN-ACK, data, a FIN and a
 * RST. The rotation case moves a live stream from key 1 to key 2. Every case
 * also runs the negative controls: a key one bit off and the other side's ids
 * must verify nothing, and the other options setting no segment that carries
 * options besides TCP-AO.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

import t, { type Test } from 'tap';
import { skipUnlessAo } from '../helpers/ao.js';
import { endpoint, initiatorSection, terminatorSection } from '../helpers/configs.js';
import {
  flipLastBit,
  swapSendIds,
  verifierUnavailable,
  verifyCapture,
  type VerifierKey,
  type VerifierSummary,
  type WireAlgorithm,
} from '../helpers/conformance.js';
import { isListening, startSidecar, startTraffic, topology, topologyUp, type LineProcess } from '../helpers/lab.js';
import { ReloadableSidecar, eventually, sideToml, startEcho, startPacedClient, type KeyTable } from '../helpers/rotation.js';
import { startCapture, type CaptureStats } from '../helpers/wire-capture.js';

const MIB = 1024 * 1024;
const SEND_BYTES = MIB;
const REPLY_BYTES = 256 * 1024;
/** 1 MiB at an MSS of about 1400 is some 750 data segments one way, before the ACKs. */
const MIN_SEGMENTS = 750;
const WIRE_MTU = 1500;
const STEP_MS = 300_000;

interface WireCase {
  readonly name: string;
  readonly alg: WireAlgorithm;
  readonly keyHex: string;
  readonly family: 4 | 6;
  readonly excludeOptions: boolean;
  readonly sack: boolean;
  /** The initiator's send_id and recv_id; the terminator's are the reverse. */
  readonly initiatorSendId: number;
  readonly initiatorRecvId: number;
}

const hexKey = (bytes: number, seed: number): string => Buffer.from(Array.from({ length: bytes }, (_, i) => (seed * 31 + i * 7) & 0xff)).toString('hex');

const CASES: readonly WireCase[] = [
  { name: 'hmac-sha1, 20-byte key, IPv4, options included', alg: 'hmac-sha1', keyHex: hexKey(20, 1), family: 4, excludeOptions: false, sack: false, initiatorSendId: 1, initiatorRecvId: 1 },
  { name: 'aes-128-cmac, 16-byte key, IPv4, options included', alg: 'aes-128-cmac', keyHex: hexKey(16, 2), family: 4, excludeOptions: false, sack: false, initiatorSendId: 3, initiatorRecvId: 4 },
  { name: 'aes-128-cmac, 37-byte key (RFC 5926 KDF step), IPv6', alg: 'aes-128-cmac', keyHex: hexKey(37, 3), family: 6, excludeOptions: false, sack: false, initiatorSendId: 5, initiatorRecvId: 6 },
  { name: 'hmac-sha1, options excluded, IPv6', alg: 'hmac-sha1', keyHex: hexKey(20, 4), family: 6, excludeOptions: true, sack: false, initiatorSendId: 7, initiatorRecvId: 8 },
  { name: 'aes-128-cmac, options excluded, SACK on', alg: 'aes-128-cmac', keyHex: hexKey(16, 5), family: 4, excludeOptions: true, sack: true, initiatorSendId: 10, initiatorRecvId: 11 },
  { name: 'hmac-sha1, unequal ids 9 and 2, SACK on', alg: 'hmac-sha1', keyHex: hexKey(20, 6), family: 4, excludeOptions: false, sack: true, initiatorSendId: 9, initiatorRecvId: 2 },
  { name: 'hmac-sha256 (RFC 5925 KDF from the standard library)', alg: 'hmac-sha256', keyHex: hexKey(32, 7), family: 4, excludeOptions: false, sack: false, initiatorSendId: 12, initiatorRecvId: 13 },
];

function inNode(node: string, args: readonly string[]): void {
  const run = spawnSync('ip', ['netns', 'exec', node, ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${args.join(' ')} in ${node}: ${run.stderr}`);
}

/** The lab topology with a router-like wire: MTU 1500 (so 1 MiB is many segments) and SACK as the case says. */
function wireUp(t: Test, sack: boolean): void {
  topologyUp(t);
  for (const node of [topology.initiatorNode, topology.terminatorNode]) {
    inNode(node, ['ip', 'link', 'set', topology.wireIface, 'mtu', String(WIRE_MTU)]);
    inNode(node, ['sysctl', '-qw', `net.ipv4.tcp_sack=${sack ? 1 : 0}`]);
  }
}

function workDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-conformance-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function policyText(wireCase: WireCase, side: 'initiator' | 'terminator', peer: string, wirePort: number): string {
  const [sendId, recvId] =
    side === 'initiator' ? [wireCase.initiatorSendId, wireCase.initiatorRecvId] : [wireCase.initiatorRecvId, wireCase.initiatorSendId];
  return [
    '[[ao_policy]]',
    'name = "conformance"',
    `peer_ip = "${peer}"`,
    `peer_port = ${wirePort}`,
    `keyid = ${sendId}`,
    `send_id = ${sendId}`,
    `recv_id = ${recvId}`,
    `mac_alg = "${wireCase.alg}"`,
    'key_source = "env-hex:TCPAO_KEY"',
    'maclen = 12',
    `exclude_tcp_options = ${wireCase.excludeOptions}`,
    '',
  ].join('\n');
}

const GLOBAL = ['[global]', 'log_format = "json"', 'log_level = "info"', 'connect_timeout_secs = 30', 'shutdown_timeout_secs = 5', ''].join('\n');

/** Checks what the verifier said of the real capture, and that each control rejects every segment. */
function assertVerified(t: Test, pcap: string, stats: CaptureStats, keys: readonly VerifierKey[], idsDiffer: boolean, minSegments: number): VerifierSummary {
  t.equal(stats.dropped, 0, 'dumpcap dropped no packet');
  const good = verifyCapture(pcap, keys);
  const { summary } = good;
  t.comment(
    `verified ${summary.verified} of ${summary.segments} segments (${JSON.stringify(summary.flags)}, KeyIDs ${JSON.stringify(summary.key_ids)}) with ${summary.algorithms.join(', ')}`,
  );
  t.equal(good.status, 0, `every segment verifies: ${summary.failures.slice(0, 5).join('; ')}`);
  t.equal(summary.segments, stats.received, 'the verifier read every packet dumpcap received');
  t.equal(summary.verified, summary.segments, 'verified = segments');
  t.ok(summary.segments >= minSegments, `at least ${minSegments} segments (${summary.segments})`);

  const wrongKey = verifyCapture(pcap, keys.map((key) => ({ ...key, keyHex: flipLastBit(key.keyHex) })));
  t.equal(wrongKey.summary.verified, 0, `control, a key one bit off: 0 of ${wrongKey.summary.segments} verify`);
  t.not(wrongKey.status, 0, 'control, a key one bit off: the verifier fails');
  if (idsDiffer) {
    const swapped = verifyCapture(pcap, swapSendIds(keys));
    t.equal(swapped.summary.verified, 0, `control, the other side's ids: 0 of ${swapped.summary.segments} verify`);
  }
  // Linux drops timestamps when SACK is on under TCP-AO (no room for SACK blocks beside both), so
  // with SACK on only the handshake carries other options: those are the segments this control must reject.
  const otherOptions = verifyCapture(pcap, keys.map((key) => ({ ...key, includeOptions: !key.includeOptions })));
  t.ok(summary.with_other_options >= 2, `${summary.with_other_options} segments carry options besides TCP-AO (at least the SYN and SYN-ACK)`);
  t.equal(
    otherOptions.summary.verified,
    summary.segments - summary.with_other_options,
    `control, the other options setting: none of the ${summary.with_other_options} segments with other options verifies`,
  );
  return summary;
}

const skipReason = verifierUnavailable();

CASES.forEach((wireCase, index) => {
  t.test(wireCase.name, { skip: skipReason }, async (t) => {
    if (!skipUnlessAo(t)) return;
    wireUp(t, wireCase.sack);
    const dir = workDir(t);
    const ports = { local: 26_000 + index * 10, wire: 26_001 + index * 10, app: 26_002 + index * 10 };
    const initiatorAddress = wireCase.family === 4 ? topology.initiatorIpv4 : topology.initiatorIpv6;
    const terminatorAddress = wireCase.family === 4 ? topology.terminatorIpv4 : topology.terminatorIpv6;
    const env = { TCPAO_KEY: wireCase.keyHex };

    const app = startTraffic(t, topology.terminatorNode, 'app', ['server', `127.0.0.1:${ports.app}`, String(REPLY_BYTES), 'reset-after-eof']);
    await app.waitFor((line) => line['event'] === 'listening', STEP_MS);
    const terminatorConfig = [GLOBAL, terminatorSection(endpoint(terminatorAddress, ports.wire), `127.0.0.1:${ports.app}`), policyText(wireCase, 'terminator', initiatorAddress, ports.wire)].join('\n');
    const terminator = startSidecar(t, topology.terminatorNode, 'terminator', terminatorConfig, env);
    await terminator.waitFor(isListening, STEP_MS);
    const initiatorConfig = [GLOBAL, initiatorSection(`127.0.0.1:${ports.local}`, endpoint(terminatorAddress, ports.wire)), policyText(wireCase, 'initiator', terminatorAddress, ports.wire)].join('\n');
    const initiator = startSidecar(t, topology.initiatorNode, 'initiator', initiatorConfig, env);
    await initiator.waitFor(isListening, STEP_MS);

    const pcap = join(dir, 'wire.pcapng');
    const capture = await startCapture(t, topology.initiatorNode, topology.wireIface, `tcp port ${ports.wire}`, pcap);
    const client = startTraffic(t, topology.initiatorNode, 'client', ['client', `127.0.0.1:${ports.local}`, String(SEND_BYTES)]);
    await client.waitFor((line) => line['event'] === 'client_done', STEP_MS, 'client_done');
    const served = await app.waitFor((line) => line['event'] === 'conn_done', STEP_MS, 'the app conn_done');
    await terminator.waitFor((line) => line['event'] === 'connection_closed', STEP_MS, 'connection_closed');
    await initiator.waitFor((line) => line['event'] === 'connection_closed', STEP_MS, 'connection_closed');
    const stats = await capture.stop();

    const sent = client.events('conn_done')[0] ?? {};
    t.equal(served['received'], SEND_BYTES, 'the app received the whole 1 MiB');
    t.equal(served['receivedSha256'], sent['sentSha256'], 'and exactly the bytes the client sent');
    t.ok(Number(sent['received']) > 0, `the reply reached the client before the reset (${String(sent['received'])} bytes)`);

    const keys: VerifierKey[] = [
      {
        alg: wireCase.alg,
        keyHex: wireCase.keyHex,
        includeOptions: !wireCase.excludeOptions,
        sendIds: { [initiatorAddress]: wireCase.initiatorSendId, [terminatorAddress]: wireCase.initiatorRecvId },
      },
    ];
    const summary = assertVerified(t, pcap, stats, keys, wireCase.initiatorSendId !== wireCase.initiatorRecvId, MIN_SEGMENTS);
    const { flags } = summary;
    if (!wireCase.sack) t.equal(summary.with_other_options, summary.segments, 'with SACK off, timestamps are on every segment');
    t.equal(flags.syn, 1, 'the SYN verified');
    t.equal(flags.syn_ack, 1, 'the SYN-ACK verified');
    t.ok(flags.fin >= 1, 'a FIN verified');
    t.ok(flags.rst >= 1, 'a RST verified');
    t.ok(flags.data >= MIN_SEGMENTS, 'data segments verified');
  });
});

const OLD_KEY_HEX = hexKey(20, 11);
const NEW_KEY_HEX = hexKey(20, 12);
const ROTATION_PORTS = { local: 26_200, wire: 26_201, app: 26_202 };
const OLD = (role: KeyTable['role']): KeyTable => ({ sendId: 1, recvId: 1, role, source: 'env-hex:TCPAO_KEY_OLD', macAlg: 'hmac-sha1' });
const NEW = (role: KeyTable['role']): KeyTable => ({ sendId: 2, recvId: 2, role, source: 'env-hex:TCPAO_KEY_NEW', macAlg: 'hmac-sha1' });

t.test('segments before, during and after a key rotation on a live stream', { skip: skipReason }, async (t) => {
  if (!skipUnlessAo(t)) return;
  wireUp(t, false);
  const dir = workDir(t);
  const env = { TCPAO_KEY_OLD: OLD_KEY_HEX, TCPAO_KEY_NEW: NEW_KEY_HEX };
  const terminator = new ReloadableSidecar(t, topology.terminatorNode, 'terminator', undefined);
  const initiator = new ReloadableSidecar(t, topology.initiatorNode, 'initiator', undefined);
  const configFor = (side: ReloadableSidecar, keys: readonly KeyTable[]): string =>
    sideToml({
      mode: side.mode,
      localPort: side.mode === 'initiator' ? ROTATION_PORTS.local : ROTATION_PORTS.app,
      peer: side.mode === 'initiator' ? topology.terminatorIpv4 : topology.initiatorIpv4,
      wireHost: topology.terminatorIpv4,
      wirePort: ROTATION_PORTS.wire,
      pidFile: side.pidFile,
      keys,
      connectTimeoutSecs: 30,
    });
  const reloads = new Map<ReloadableSidecar, number>();
  const reload = async (side: ReloadableSidecar, keys: readonly KeyTable[]): Promise<void> => {
    side.writeConfig(configFor(side, keys));
    t.equal((await side.reload()).status, 0, `tcpao-proxy reload of the ${side.mode} exits 0`);
    const count = (reloads.get(side) ?? 0) + 1;
    reloads.set(side, count);
    t.equal((await side.reloadOutcome(count))['event'], 'reload_applied', `the ${side.mode} applied reload ${count}`);
  };

  const app = startEcho(t, topology.terminatorNode, ROTATION_PORTS.app);
  await app.waitFor((line) => line['event'] === 'listening', STEP_MS);
  for (const side of [terminator, initiator]) {
    side.writeConfig(configFor(side, [OLD('preferred')]));
    side.start(t, env);
    await side.proc.waitFor(isListening, STEP_MS);
  }
  const pcap = join(dir, 'rotation.pcapng');
  const capture = await startCapture(t, topology.initiatorNode, topology.wireIface, `tcp port ${ROTATION_PORTS.wire}`, pcap);
  // Small chunks, slowly: enough segments on each key without a capture of hundreds of thousands.
  const client: LineProcess = startPacedClient(t, topology.initiatorNode, ROTATION_PORTS.local, 1024, 50);
  await client.waitFor((line) => line['event'] === 'connected', STEP_MS);
  const flowFor = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  await flowFor(5000);

  for (const side of [terminator, initiator]) await reload(side, [OLD('preferred'), NEW('accept')]);
  await flowFor(3000);
  for (const side of [terminator, initiator]) await reload(side, [OLD('accept'), NEW('preferred')]);
  await flowFor(5000);

  client.child.kill('SIGUSR2');
  const done = await client.waitFor((line) => line['event'] === 'conn_done', STEP_MS, 'the end of the stream');
  await eventually('the terminator closing the connection', async () => (terminator.proc.events('connection_closed').length > 0 ? true : undefined), STEP_MS);
  const stats = await capture.stop();
  t.ok(Number(done['sent']) > 0, `the stream moved ${String(done['sent'])} bytes`);

  const keys: VerifierKey[] = [
    { alg: 'hmac-sha1', keyHex: OLD_KEY_HEX, includeOptions: true, sendIds: { [topology.initiatorIpv4]: 1, [topology.terminatorIpv4]: 1 } },
    { alg: 'hmac-sha1', keyHex: NEW_KEY_HEX, includeOptions: true, sendIds: { [topology.initiatorIpv4]: 2, [topology.terminatorIpv4]: 2 } },
  ];
  assertVerified(t, pcap, stats, keys, false, 500);
  const { summary } = verifyCapture(pcap, keys);
  for (const address of [topology.initiatorIpv4, topology.terminatorIpv4]) {
    t.ok((summary.key_ids[`${address}>1`] ?? 0) > 0, `${address} sent and verified on key 1 before the rotation`);
    t.ok((summary.key_ids[`${address}>2`] ?? 0) > 0, `${address} sent and verified on key 2 after it`);
  }
  const swappedKeys = keys.map((key, i) => ({ ...key, keyHex: (keys[1 - i] as VerifierKey).keyHex }));
  const swapped = verifyCapture(pcap, swappedKeys);
  t.equal(swapped.summary.verified, 0, `control, the two master keys swapped between ids 1 and 2: 0 of ${swapped.summary.segments} verify`);
});
