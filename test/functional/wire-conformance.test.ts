/**
 * Wire conformance proven by an implementation that is not the kernel's: the
 * wire leg between initiator and terminator is captured and every TCP
 * segment's MAC is checked by scapy.contrib.tcpao (RFC 5925 and RFC 5926,
 * written apart from Linux) from the master key, the key ids and the ISNs in
 * the capture. A mistake both kernels share (MAC length, a skipped KDF,
 * options in or out of the MAC, id direction) passes every kernel-to-kernel
 * test but fails here, as it would against a router.
 *
 * hmac-sha256 is not an RFC 5926 algorithm and scapy does not offer it; its
 * RFC 5925 KDF and MAC are computed in the verifier from Python's standard
 * library (only the message layout comes from scapy).
 *
 * Each case is checked three more times as negative controls: with a wrong
 * key, with the other side's ids, and with the options flag flipped; each
 * must reject every segment.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { aoRequired, skipUnlessAo } from '../helpers/ao';
import { tsharkKeyIds, swappedIds, verifierMissing, verifyCapture, type Verdict, type VerifierKey, type WireAlgorithm } from '../helpers/conformance';
import { isListening, spawnInNode, startSidecar, startTraffic, topology, topologyUp, type JsonLine, type LineProcess } from '../helpers/lab';
import { ReloadableSidecar, eventually, sideToml, startEcho, startPacedClient, type KeyTable } from '../helpers/rotation';
import { startCapture } from '../helpers/wire-capture';

t.setTimeout(90 * 60_000);

const MIB = 1024 * 1024;
/** Bytes each way on the bulk connection: at the lab's 9500-byte MTU, about 1,800 data segments each way. */
const BULK_BYTES = 16 * MIB;
/** Fewer verified segments than this and the case proves too little. */
const MIN_SEGMENTS = 2_000;
const MACLEN = 12;

interface WireCase {
  readonly name: string;
  readonly algorithm: WireAlgorithm;
  readonly keyBytes: number;
  readonly family: 4 | 6;
  readonly excludeOptions: boolean;
}

const CASES: readonly WireCase[] = [
  { name: 'hmac-sha1, IPv4, options included', algorithm: 'hmac-sha1', keyBytes: 20, family: 4, excludeOptions: false },
  { name: 'hmac-sha1, IPv6, options excluded', algorithm: 'hmac-sha1', keyBytes: 20, family: 6, excludeOptions: true },
  { name: 'aes-128-cmac, 16-byte key, IPv4, options included', algorithm: 'aes-128-cmac', keyBytes: 16, family: 4, excludeOptions: false },
  { name: 'aes-128-cmac, 16-byte key, IPv6, options excluded', algorithm: 'aes-128-cmac', keyBytes: 16, family: 6, excludeOptions: true },
  { name: 'aes-128-cmac, 37-byte key (RFC 5926 KDF step), IPv6, options included', algorithm: 'aes-128-cmac', keyBytes: 37, family: 6, excludeOptions: false },
  { name: 'aes-128-cmac, 37-byte key (RFC 5926 KDF step), IPv4, options excluded', algorithm: 'aes-128-cmac', keyBytes: 37, family: 4, excludeOptions: true },
  { name: 'hmac-sha256 (RFC 5925 KDF computed in the test), IPv4, options included', algorithm: 'hmac-sha256', keyBytes: 32, family: 4, excludeOptions: false },
];

/** Distinct ids each way, so a verifier holding the other side's ids must fail. */
const INITIATOR_IDS = { sendId: 41, recvId: 14 } as const;

const addresses = (family: 4 | 6) =>
  family === 4
    ? { initiator: topology.initiatorIpv4, terminator: topology.terminatorIpv4 }
    : { initiator: topology.initiatorIpv6, terminator: topology.terminatorIpv6 };

const bracket = (host: string) => (host.includes(':') ? `[${host}]` : host);

function sideConfig(
  wire: WireCase,
  mode: 'initiator' | 'terminator',
  ports: { readonly local: number; readonly wire: number; readonly app: number },
): string {
  const { initiator, terminator } = addresses(wire.family);
  const ids = mode === 'initiator' ? INITIATOR_IDS : { sendId: INITIATOR_IDS.recvId, recvId: INITIATOR_IDS.sendId };
  const section =
    mode === 'initiator'
      ? ['[initiator]', `listen_plain = "127.0.0.1:${ports.local}"`, `remote_ao = "${bracket(terminator)}:${ports.wire}"`]
      : ['[terminator]', `listen_ao = "${bracket(terminator)}:${ports.wire}"`, `forward_plain = "127.0.0.1:${ports.app}"`];
  return [
    '[global]',
    'log_format = "json"',
    'log_level = "debug"',
    'connect_timeout_secs = 5',
    'shutdown_timeout_secs = 5',
    '',
    ...section,
    '',
    '[[ao_policy]]',
    'name = "conformance"',
    `peer_ip = "${mode === 'initiator' ? terminator : initiator}"`,
    `peer_port = ${ports.wire}`,
    `keyid = ${ids.sendId}`,
    `send_id = ${ids.sendId}`,
    `recv_id = ${ids.recvId}`,
    `mac_alg = "${wire.algorithm}"`,
    'key_source = "env-hex:TCPAO_KEY_HEX"',
    `maclen = ${MACLEN}`,
    `exclude_tcp_options = ${wire.excludeOptions}`,
    '',
  ].join('\n');
}

function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-conform-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const isEvent = (name: string) => (line: JsonLine) => line['event'] === name;

/** A plain client that connects, sends nothing and waits to be cut off. */
function silentClient(t: Test, port: number): LineProcess {
  const script =
    `const s = require('node:net').connect(${port}, '127.0.0.1');` +
    `s.on('connect', () => console.log(JSON.stringify({ event: 'connected' })));` +
    `s.on('error', (e) => console.log(JSON.stringify({ event: 'cut', code: e.code })));` +
    `s.on('close', () => { console.log(JSON.stringify({ event: 'closed' })); process.exit(0); });`;
  return spawnInNode(t, topology.initiatorNode, 'silent-client', process.execPath, ['-e', script]);
}

const describeVerdict = (verdict: Verdict) =>
  `${verdict.verified} of ${verdict.segments} segments verified (${Object.entries(verdict.kinds)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ')}; by sender/KeyID ${JSON.stringify(verdict.keyIds)})`;

type Checks = Readonly<Record<string, readonly VerifierKey[]>>;

/**
 * Runs the verifier once over the capture: `good` must verify every segment
 * (as many as tshark reads, KeyID for KeyID, and thousands), every other
 * check is a negative control that must reject every segment.
 */
function judgeCapture(t: Test, pcap: string, good: readonly VerifierKey[], controls: Checks): Verdict {
  const verdicts = verifyCapture<string>(pcap, { ...controls, good });
  const verdict = verdicts['good'] as Verdict;
  const tshark = tsharkKeyIds(pcap);
  t.comment(`independent verifier: ${describeVerdict(verdict)}`);
  t.equal(verdict.segments, tshark.segments, `the verifier read every TCP segment tshark reads (${tshark.segments})`);
  t.same(verdict.rejections, [], 'no segment was rejected');
  t.equal(verdict.rejected, 0, 'rejected: 0');
  t.equal(verdict.verified, verdict.segments, `every one of the ${verdict.segments} segments verified`);
  t.ok(verdict.verified >= MIN_SEGMENTS, `thousands of segments verified (${verdict.verified} >= ${MIN_SEGMENTS})`);
  t.same(verdict.keyIds, tshark.keyIds, 'by sender and KeyID, as tshark dissects them');
  for (const what of Object.keys(controls)) {
    const control = verdicts[what] as Verdict;
    t.comment(`negative control (${what}): ${control.rejected} of ${control.segments} segments rejected; first: ${control.rejections[0] ?? 'none'}`);
    t.equal(control.verified, 0, `${what}: no segment verifies`);
    t.equal(control.rejected, control.segments, `${what}: all ${control.segments} segments rejected`);
  }
  return verdict;
}

async function runCase(t: Test, wire: WireCase, ports: { readonly local: number; readonly wire: number; readonly app: number }): Promise<void> {
  const dir = scratch(t);
  const { initiator: initiatorAddress, terminator: terminatorAddress } = addresses(wire.family);
  const key = randomBytes(wire.keyBytes);
  const env = { TCPAO_KEY_HEX: key.toString('hex') };
  const capture = await startCapture(
    t,
    topology.terminatorNode,
    'eth1',
    `tcp port ${ports.wire} and host ${initiatorAddress} and host ${terminatorAddress}`,
    join(dir, 'wire.pcapng'),
  );

  const app = startTraffic(t, topology.terminatorNode, 'app', ['server', `127.0.0.1:${ports.app}`, String(BULK_BYTES)]);
  await app.waitFor(isEvent('listening'), 300_000, 'app listening');
  const terminator = startSidecar(t, topology.terminatorNode, 'terminator', sideConfig(wire, 'terminator', ports), env);
  await terminator.waitFor(isListening, 300_000, 'terminator listening');
  const initiator = startSidecar(t, topology.initiatorNode, 'initiator', sideConfig(wire, 'initiator', ports), env);
  await initiator.waitFor(isListening, 300_000, 'initiator listening');

  const client = startTraffic(t, topology.initiatorNode, 'client', ['client', `127.0.0.1:${ports.local}`, String(BULK_BYTES), '1']);
  const done = await client.waitFor(isEvent('conn_done'), 900_000, 'the bulk connection to end');
  t.equal(done['received'], BULK_BYTES, 'the bulk connection carried every byte back');
  const appDone = await app.waitFor(isEvent('conn_done'), 300_000, 'the app to see the bulk connection end');
  t.equal(appDone['receivedSha256'], done['sentSha256'], 'and every byte there, intact (SHA-256)');
  await terminator.waitFor(isEvent('connection_closed'), 300_000, 'the bulk relay to close');
  await initiator.waitFor(isEvent('connection_closed'), 300_000, 'the bulk relay to close');

  // With the app gone, the next connection is accepted on the wire and reset by the terminator: a signed RST.
  await app.stop('SIGTERM');
  const silent = silentClient(t, ports.local);
  const refused = await terminator.waitFor(isEvent('connection_refused'), 300_000, 'the terminator to refuse the connection');
  t.ok(refused['reason'] !== undefined, `the terminator reset the wire connection (${String(refused['reason'])})`);
  await silent.waitFor(isEvent('closed'), 300_000, 'the silent client to be cut off');
  await initiator.waitFor(() => initiator.events('connection_closed').length + initiator.events('connection_refused').length >= 2, 300_000, 'the initiator to end the reset relay');
  await capture.stop();

  const keys: VerifierKey[] = [
    { sender: initiatorAddress, ...INITIATOR_IDS, algorithm: wire.algorithm, key, includeOptions: !wire.excludeOptions, maclen: MACLEN },
    {
      sender: terminatorAddress,
      sendId: INITIATOR_IDS.recvId,
      recvId: INITIATOR_IDS.sendId,
      algorithm: wire.algorithm,
      key,
      includeOptions: !wire.excludeOptions,
      maclen: MACLEN,
    },
  ];
  const verdict = judgeCapture(t, capture.file, keys, {
    'a wrong key': keys.map((entry) => ({ ...entry, key: randomBytes(wire.keyBytes) })),
    "the other side's ids": swappedIds(keys),
    'the options flag flipped': keys.map((entry) => ({ ...entry, includeOptions: !entry.includeOptions })),
  });
  for (const kind of ['syn', 'syn-ack', 'data', 'ack', 'fin', 'rst']) {
    t.ok((verdict.kinds[kind] ?? 0) > 0, `${kind} segments among them (${verdict.kinds[kind] ?? 0})`);
  }
  t.ok((verdict.keyIds[`${initiatorAddress}/${INITIATOR_IDS.sendId}`] ?? 0) > 0, `the initiator signs with its send_id ${INITIATOR_IDS.sendId}`);
  t.ok((verdict.keyIds[`${terminatorAddress}/${INITIATOR_IDS.recvId}`] ?? 0) > 0, `the terminator signs with its send_id ${INITIATOR_IDS.recvId}`);
}

/**
 * Key 1 (hmac-sha1, options in the MAC) to key 2 (aes-128-cmac with a 37-byte
 * key, options out of the MAC: its own exclude_tcp_options) on one
 * connection while a stream flows both ways.
 */
async function runRotation(t: Test): Promise<void> {
  const ports = { local: 26_900, wire: 26_901, app: 26_902, initiatorMetrics: 26_910, terminatorMetrics: 26_911 };
  const dir = scratch(t);
  const oldKey = randomBytes(20);
  const newKey = randomBytes(37);
  const env = { TCPAO_KEY_OLD_HEX: oldKey.toString('hex'), TCPAO_KEY_NEW_HEX: newKey.toString('hex') };
  const OLD = (role: KeyTable['role']): KeyTable => ({ sendId: 1, recvId: 1, role, source: 'env-hex:TCPAO_KEY_OLD_HEX', macAlg: 'hmac-sha1' });
  const NEW = (role: KeyTable['role']): KeyTable => ({
    sendId: 2,
    recvId: 2,
    role,
    source: 'env-hex:TCPAO_KEY_NEW_HEX',
    macAlg: 'aes-128-cmac',
    excludeTcpOptions: true,
  });

  const terminator = new ReloadableSidecar(t, topology.terminatorNode, 'terminator', ports.terminatorMetrics);
  const initiator = new ReloadableSidecar(t, topology.initiatorNode, 'initiator', ports.initiatorMetrics);
  const config = (side: ReloadableSidecar, keys: readonly KeyTable[]) =>
    sideToml({
      mode: side.mode,
      localPort: side.mode === 'initiator' ? ports.local : ports.app,
      peer: side.mode === 'initiator' ? topology.terminatorIpv4 : topology.initiatorIpv4,
      wireHost: topology.terminatorIpv4,
      wirePort: ports.wire,
      metricsPort: side.mode === 'initiator' ? ports.initiatorMetrics : ports.terminatorMetrics,
      pidFile: side.pidFile,
      keys,
    });
  const reloads = new Map<ReloadableSidecar, number>();
  const reload = async (side: ReloadableSidecar, keys: readonly KeyTable[]): Promise<void> => {
    side.writeConfig(config(side, keys));
    const run = await side.reload();
    t.equal(run.status, 0, `tcpao-proxy reload of the ${side.mode} exits 0`);
    const count = (reloads.get(side) ?? 0) + 1;
    reloads.set(side, count);
    const outcome = await side.reloadOutcome(count);
    t.equal(outcome['event'], 'reload_applied', `the ${side.mode} applied the new key roles`);
  };
  const bytesOnWire = async (): Promise<number | undefined> => {
    const connection = (await terminator.status()).connections[0];
    return connection === undefined ? undefined : connection.bytesClientToUpstream + connection.bytesUpstreamToClient;
  };
  const flowedPast = (limit: number) => eventually(`the stream to pass ${limit} bytes`, async () => {
    const bytes = await bytesOnWire();
    return bytes !== undefined && bytes > limit ? bytes : undefined;
  }, 600_000);

  const capture = await startCapture(
    t,
    topology.terminatorNode,
    'eth1',
    `tcp port ${ports.wire} and host ${topology.initiatorIpv4} and host ${topology.terminatorIpv4}`,
    join(dir, 'rotation.pcapng'),
  );
  const app = startEcho(t, topology.terminatorNode, ports.app);
  await app.waitFor(isEvent('listening'), 300_000, 'echo listening');
  terminator.writeConfig(config(terminator, [OLD('preferred'), NEW('accept')]));
  terminator.start(t, env);
  await terminator.proc.waitFor(isListening, 300_000, 'terminator listening');
  initiator.writeConfig(config(initiator, [OLD('preferred'), NEW('accept')]));
  initiator.start(t, env);
  await initiator.proc.waitFor(isListening, 300_000, 'initiator listening');

  const client = startPacedClient(t, topology.initiatorNode, ports.local, 65_536, 5);
  await client.waitFor(isEvent('connected'), 300_000, 'the stream to connect');
  const beforeRotation = await flowedPast(8 * MIB);
  // The order of docs/key-rotation.md: the terminator asks for key 2, then the initiator prefers it.
  await reload(terminator, [OLD('accept'), NEW('preferred')]);
  await eventually('the initiator to send with key 2', async () => ((await initiator.status()).connections[0]?.currentKey === 2 ? true : undefined), 600_000);
  await reload(initiator, [OLD('accept'), NEW('preferred')]);
  await eventually('the terminator to send with key 2', async () => ((await terminator.status()).connections[0]?.currentKey === 2 ? true : undefined), 600_000);
  await flowedPast(beforeRotation + 16 * MIB);
  client.child.kill('SIGUSR2');
  const done = await client.waitFor(isEvent('conn_done'), 300_000, 'the stream to end');
  t.equal(done['receivedSha256'], done['sentSha256'], 'the echo came back intact across the rotation (SHA-256)');
  await terminator.proc.waitFor(isEvent('connection_closed'), 300_000, 'the relay to close');
  await capture.stop();

  const keysOf = (sender: string): VerifierKey[] => [
    { sender, sendId: 1, recvId: 1, algorithm: 'hmac-sha1', key: oldKey, includeOptions: true, maclen: MACLEN },
    { sender, sendId: 2, recvId: 2, algorithm: 'aes-128-cmac', key: newKey, includeOptions: false, maclen: MACLEN },
  ];
  const keys = [...keysOf(topology.initiatorIpv4), ...keysOf(topology.terminatorIpv4)];
  const verdict = judgeCapture(t, capture.file, keys, {
    'wrong keys': keys.map((entry) => ({ ...entry, key: randomBytes(entry.key.length) })),
    "each key's options flag flipped": keys.map((entry) => ({ ...entry, includeOptions: !entry.includeOptions })),
  });
  for (const sender of [topology.initiatorIpv4, topology.terminatorIpv4]) {
    t.ok((verdict.keyIds[`${sender}/1`] ?? 0) > 0, `${sender} signed with key 1 before the rotation (${verdict.keyIds[`${sender}/1`] ?? 0})`);
    t.ok((verdict.keyIds[`${sender}/2`] ?? 0) > 0, `${sender} signed with key 2 after it (${verdict.keyIds[`${sender}/2`] ?? 0})`);
  }
  t.ok((verdict.kinds['fin'] ?? 0) > 0, 'the FINs after the rotation verify with key 2');
}

if (skipUnlessAo(t)) {
  const missing = verifierMissing();
  if (missing !== undefined) {
    if (aoRequired()) t.fail(missing);
    else t.pass('needs the independent verifier', { skip: missing });
  } else {
    t.test('every signed segment verifies with an independent TCP-AO implementation', async (t) => {
      topologyUp(t);
      CASES.forEach((wire, index) => {
        const base = 26_000 + index * 10;
        t.test(wire.name, (tt) => runCase(tt, wire, { local: base, wire: base + 1, app: base + 2 }));
      });
      t.test('segments before and after a key rotation (hmac-sha1 with options to aes-128-cmac without)', (tt) => runRotation(tt));
    });
  }
}
