/**
 * Hitless key rotation across the two-namespace topology: while a stream
 * flows initiator -> terminator -> echo app and back, both sides rotate from
 * key 1 to key 2 in the order docs/key-rotation.md gives, each step a config
 * rewrite and `tcpao-proxy reload`. The stream arrives intact on the one
 * connection it started on; broken reloads change nothing; afterwards new
 * connections use key 2 and a peer that only has key 1 is refused.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import t, { type Test } from 'tap';
import { skipUnlessAo } from '../helpers/ao.js';
import {
  isListening,
  keyEncodings,
  netnsAoCounters,
  REPO,
  spawnInNode,
  topology,
  topologyUp,
  type JsonLine,
  type LineProcess,
} from '../helpers/lab.js';
import {
  dumpOutputs,
  eventually,
  ReloadableSidecar,
  sideToml,
  startEcho,
  startPacedClient,
  type KeyTable,
  type SideConfig,
  type StatusBody,
  type StatusConnection,
} from '../helpers/rotation.js';

const OLD_KEY = 'rotation-old-key-3f9a1c5d';
const NEW_KEY = 'rotation-new-key-7b2e4d8a';
const PORTS = { local: 25_000, wire: 25_001, app: 25_002, staleLocal: 25_003, initiatorMetrics: 25_010, terminatorMetrics: 25_011 };

const OLD = (role: KeyTable['role']): KeyTable => ({ sendId: 1, recvId: 1, role, source: 'env:TCPAO_KEY_OLD' });
const NEW = (role: KeyTable['role']): KeyTable => ({ sendId: 2, recvId: 2, role, source: 'file:new.key' });

function initiatorConfig(side: ReloadableSidecar, keys: Pick<SideConfig, 'keys' | 'single'>): string {
  return sideToml({
    mode: 'initiator',
    localPort: PORTS.local,
    peer: topology.terminatorIpv4,
    wireHost: topology.terminatorIpv4,
    wirePort: PORTS.wire,
    metricsPort: PORTS.initiatorMetrics,
    pidFile: side.pidFile,
    ...keys,
  });
}

function terminatorConfig(side: ReloadableSidecar, keys: Pick<SideConfig, 'keys' | 'single'>, wireHost = topology.terminatorIpv4): string {
  return sideToml({
    mode: 'terminator',
    localPort: PORTS.app,
    peer: topology.initiatorIpv4,
    wireHost,
    wirePort: PORTS.wire,
    metricsPort: PORTS.terminatorMetrics,
    pidFile: side.pidFile,
    ...keys,
  });
}

/** The config of either side, with its own ports and peer. */
function configFor(side: ReloadableSidecar, keys: Pick<SideConfig, 'keys' | 'single'>): string {
  return side.mode === 'terminator' ? terminatorConfig(side, keys) : initiatorConfig(side, keys);
}

/** The one relaying connection in a /status body. */
function onlyConnection(status: StatusBody): StatusConnection | undefined {
  return status.connections.length === 1 ? status.connections[0] : undefined;
}

function wireBytes(connection: StatusConnection): number {
  return connection.bytesClientToUpstream + connection.bytesUpstreamToClient;
}

/** Resolves once the stream has moved more bytes than `before` on `side`'s connection. */
async function streamStillFlows(side: ReloadableSidecar, before: number): Promise<number> {
  return eventually(`more bytes on the ${side.mode}'s connection`, async () => {
    const connection = onlyConnection(await side.status());
    return connection !== undefined && wireBytes(connection) > before ? wireBytes(connection) : undefined;
  });
}

t.test('rotating from key 1 to key 2 on both sides while a stream flows', async (t: Test) => {
  if (!skipUnlessAo(t)) return;
  topologyUp(t);

  const terminator = new ReloadableSidecar(t, topology.terminatorNode, 'terminator', PORTS.terminatorMetrics);
  const initiator = new ReloadableSidecar(t, topology.initiatorNode, 'initiator', PORTS.initiatorMetrics);
  for (const side of [terminator, initiator]) side.writeFile('new.key', NEW_KEY);
  const env = { TCPAO_KEY_OLD: OLD_KEY };
  const reloads = new Map<ReloadableSidecar, number>([
    [terminator, 0],
    [initiator, 0],
  ]);
  const bodies: string[] = [];
  const reload = async (side: ReloadableSidecar, config: string): Promise<JsonLine> => {
    side.writeConfig(config);
    const run = await side.reload();
    t.equal(run.status, 0, `tcpao-proxy reload of the ${side.mode} exits 0`);
    const count = (reloads.get(side) ?? 0) + 1;
    reloads.set(side, count);
    return side.reloadOutcome(count);
  };

  const app = startEcho(t, topology.terminatorNode, PORTS.app);
  await app.waitFor((line) => line['event'] === 'listening', 300_000);
  // Generation 1 is the spec's single-key form.
  terminator.writeConfig(terminatorConfig(terminator, { single: { keyid: 1, source: 'env:TCPAO_KEY_OLD' } }));
  terminator.start(t, env);
  await terminator.proc.waitFor(isListening, 300_000);
  initiator.writeConfig(initiatorConfig(initiator, { single: { keyid: 1, source: 'env:TCPAO_KEY_OLD' } }));
  initiator.start(t, env);
  await initiator.proc.waitFor(isListening, 300_000);

  const client = startPacedClient(t, topology.initiatorNode, PORTS.local);
  dumpOutputs(t, () => [terminator.proc, initiator.proc, app, client]);
  await client.waitFor((line) => line['event'] === 'connected', 300_000);
  let flowed = await streamStillFlows(terminator, 0);
  const before = onlyConnection(await terminator.status());
  t.equal(before?.currentKey, 1, 'the stream starts on key 1 (terminator current key)');
  t.same(before?.keys.map((key) => key.sendId), [1], 'only key 1 is on the terminator wire socket');

  t.test('step 1: key 2 added as accept on both sides', async (tt) => {
    for (const side of [terminator, initiator]) {
      const config = configFor(side, { keys: [OLD('preferred'), NEW('accept')] });
      const outcome = await reload(side, config);
      tt.equal(outcome['event'], 'reload_applied', `the ${side.mode} applied generation 2`);
      tt.equal(outcome['generation'], 2);
      const connection = onlyConnection(await side.status());
      tt.same(connection?.keys.map((key) => key.sendId).sort(), [1, 2], `the ${side.mode}'s wire socket holds keys 1 and 2`);
    }
    const listener = (await terminator.status()).listeners[0];
    tt.same(listener?.keys.map((key) => key.sendId).sort(), [1, 2], 'the AO listener holds keys 1 and 2');
    flowed = await streamStillFlows(terminator, flowed);
  });

  t.test('broken reloads change nothing and the stream goes on', async (tt) => {
    const broken: [string, string, string][] = [
      ['bad TOML', '[terminator\nlisten_ao = ', 'ERR_TCPAO_CONFIG_SYNTAX'],
      [
        'a key variable that is not set',
        terminatorConfig(terminator, { keys: [OLD('preferred'), { ...NEW('accept'), source: 'env:TCPAO_KEY_NOT_SET' }] }),
        'ERR_TCPAO_KEY_SOURCE',
      ],
      [
        'a different listen address',
        terminatorConfig(terminator, { keys: [OLD('preferred'), NEW('accept')] }, '0.0.0.0'),
        'ERR_TCPAO_RELOAD_RESTART_NEEDED',
      ],
    ];
    for (const [what, config, code] of broken) {
      const outcome = await reload(terminator, config);
      tt.equal(outcome['event'], 'reload_failed', `${what}: the reload is refused`);
      const problems = (outcome['problems'] as { code: string }[] | undefined) ?? [];
      tt.ok(problems.some((problem) => problem.code === code), `${what}: the log names ${code}`);
      const status = await terminator.status();
      tt.equal(status.config.generation, 2, `${what}: still config generation 2`);
      tt.equal(status.config.lastReload?.result, 'failed', `${what}: /status shows the failed reload`);
      tt.same(onlyConnection(status)?.keys.map((key) => key.sendId).sort(), [1, 2], `${what}: the wire socket keys are unchanged`);
      flowed = await streamStillFlows(terminator, flowed);
    }
    terminator.writeConfig(terminatorConfig(terminator, { keys: [OLD('preferred'), NEW('accept')] }));
  });

  t.test('step 2 and 3: key 2 preferred on the terminator, then on the initiator', async (tt) => {
    const outcome = await reload(terminator, terminatorConfig(terminator, { keys: [OLD('accept'), NEW('preferred')] }));
    tt.equal(outcome['event'], 'reload_applied', 'the terminator prefers key 2');
    // The terminator asks for key 2 (RNext); the initiator's kernel follows and sends with key 2.
    await eventually('the initiator to send with key 2', async () => ((await initiator.status()).connections[0]?.currentKey === 2 ? true : undefined));
    const next = await reload(initiator, initiatorConfig(initiator, { keys: [OLD('accept'), NEW('preferred')] }));
    tt.equal(next['event'], 'reload_applied', 'the initiator prefers key 2');
    for (const side of [terminator, initiator]) {
      const connection = await eventually(`the ${side.mode} to use key 2 both ways`, async () => {
        const found = onlyConnection(await side.status());
        return found?.currentKey === 2 && found.rnextKey === 2 ? found : undefined;
      });
      tt.equal(connection.currentKey, 2, `/status: the ${side.mode}'s wire socket sends with key 2`);
      tt.equal(connection.rnextKey, 2, `/status: the ${side.mode}'s wire socket asks for key 2`);
    }
    flowed = await streamStillFlows(terminator, flowed);
  });

  t.test('step 4 and 5: key 1 deprecated, then removed', async (tt) => {
    for (const side of [terminator, initiator]) {
      const config = configFor(side, { keys: [OLD('deprecated'), NEW('preferred')] });
      const outcome = await reload(side, config);
      tt.equal(outcome['event'], 'reload_applied', `the ${side.mode} deprecates key 1`);
    }
    for (const side of [terminator, initiator]) {
      const keys = await eventually(`key 1 to leave the ${side.mode}'s wire socket`, async () => {
        const connection = onlyConnection(await side.status());
        return connection !== undefined && !connection.keys.some((key) => key.sendId === 1) ? connection.keys : undefined;
      });
      tt.same(keys.map((key) => key.sendId), [2], `only key 2 is left on the ${side.mode}'s wire socket`);
    }
    tt.same((await terminator.status()).listeners[0]?.keys.map((key) => key.sendId), [2], 'only key 2 is left on the AO listener');
    for (const side of [terminator, initiator]) {
      const removed = side.proc.events('key_removed').map((line) => line['sendId']);
      tt.ok(removed.length >= 1 && removed.every((id) => id === 1), `the ${side.mode} logged removing key 1 (and nothing else)`);
    }
    for (const side of [terminator, initiator]) {
      const config = configFor(side, { keys: [NEW('preferred')] });
      const outcome = await reload(side, config);
      tt.equal(outcome['event'], 'reload_applied', `the ${side.mode} drops key 1 from its config`);
      const status = await side.status();
      bodies.push(JSON.stringify(status), await side.metrics());
      tt.same(onlyConnection(status)?.keys.map((key) => key.sendId), [2], `the ${side.mode}'s wire socket still holds key 2 only`);
      tt.equal(status.config.lastReload?.result, 'applied', `/status shows the ${side.mode}'s last reload applied`);
    }
    flowed = await streamStillFlows(terminator, flowed);
  });

  t.test('the stream arrives intact on its first connection', async (tt) => {
    client.child.kill('SIGUSR2');
    const done = await client.waitFor((line) => line['event'] === 'conn_done', 120_000);
    const appDone = await app.waitFor((line) => line['event'] === 'conn_done', 120_000);
    tt.notOk(done['error'], 'the client saw no error');
    tt.ok((done['sent'] as number) > 0, `the client sent ${String(done['sent'])} bytes`);
    tt.equal(appDone['received'], done['sent'], 'the app received every byte');
    tt.equal(appDone['receivedSha256'], done['sentSha256'], 'the app received exactly what was sent (SHA-256)');
    tt.equal(done['received'], done['sent'], 'the echo came back in full');
    tt.equal(done['receivedSha256'], done['sentSha256'], 'the echo came back intact (SHA-256)');
    tt.equal(app.events('accepted').length, 1, 'the app saw one connection: no reconnect');
    tt.equal(terminator.proc.events('connection_accepted').length, 1, 'the terminator accepted one connection');
    tt.equal(initiator.proc.events('connection_accepted').length, 1, 'the initiator accepted one connection');
    const closed = await terminator.proc.waitFor((line) => line['event'] === 'connection_closed', 300_000);
    tt.equal(closed['reason'], 'closed', 'the relay ended with a clean close');
  });

  t.test('a new connection after the rotation uses key 2', async (tt) => {
    const second = startPacedClient(tt, topology.initiatorNode, PORTS.local);
    await second.waitFor((line) => line['event'] === 'connected', 300_000);
    const applied = await initiator.proc.waitFor(
      (line) => line['event'] === 'outbound_ao_applied' && initiator.proc.events('outbound_ao_applied').length >= 2,
      300_000,
    );
    tt.equal(initiator.proc.events('outbound_ao_applied')[1]?.['currentKey'], 2, 'the initiator connects with key 2');
    tt.ok(applied, 'the initiator logged the outbound AO state');
    const connection = await eventually('the new connection in the terminator /status', async () => onlyConnection(await terminator.status()));
    tt.equal(connection.currentKey, 2, 'the terminator sends with key 2 on the new connection');
    tt.same(connection.keys.map((key) => key.sendId), [2], 'the new wire socket holds key 2 only');
    second.child.kill('SIGUSR2');
    const done = await second.waitFor((line) => line['event'] === 'conn_done', 60_000);
    tt.equal(done['receivedSha256'], done['sentSha256'], 'the new connection relays intact');
  });

  t.test('a peer that only has key 1 is refused', async (tt) => {
    const staleDir = initiator.dir;
    const staleConfig = join(staleDir, 'stale.toml');
    writeFileSync(
      staleConfig,
      sideToml({
        mode: 'initiator',
        localPort: PORTS.staleLocal,
        peer: topology.terminatorIpv4,
        wireHost: topology.terminatorIpv4,
        wirePort: PORTS.wire,
        single: { keyid: 1, source: 'env:TCPAO_KEY_OLD' },
      }),
    );
    const stale: LineProcess = spawnInNode(
      tt,
      topology.initiatorNode,
      'stale-initiator',
      process.execPath,
      [join(REPO, 'bin', 'tcpao-proxy'), '--mode', 'initiator', '--config', staleConfig],
      env,
    );
    await stale.waitFor(isListening, 300_000);
    const acceptedBefore = terminator.proc.events('connection_accepted').length;
    const notFoundBefore = netnsAoCounters(topology.terminatorNode)['TCPAOKeyNotFound'] ?? 0;
    const third = startPacedClient(tt, topology.initiatorNode, PORTS.staleLocal);
    const refused = await stale.waitFor((line) => line['event'] === 'connection_refused', 60_000);
    tt.equal(refused['reason'], 'wire_connect_timeout', 'the stale initiator gets no answer: the terminator drops its SYN');
    await third.waitFor((line) => line['event'] === 'conn_done', 30_000);
    tt.equal(terminator.proc.events('connection_accepted').length, acceptedBefore, 'the terminator accepted nothing from it');
    tt.equal(app.events('accepted').length, 2, 'the app saw no connection from it');
    const notFound = await eventually('TCPAOKeyNotFound to count the stale SYNs', async () => {
      const now = netnsAoCounters(topology.terminatorNode)['TCPAOKeyNotFound'] ?? 0;
      return now > notFoundBefore ? now : undefined;
    });
    tt.ok(notFound > notFoundBefore, 'the terminator namespace counted segments signed with an unknown key');
  });

  t.test('no key bytes in the logs, /status or /metrics', async (tt) => {
    const output = [initiator.proc, terminator.proc].flatMap((proc) => proc.text).join('') + bodies.join('');
    for (const secret of [OLD_KEY, NEW_KEY]) {
      for (const encoding of keyEncodings(secret)) {
        tt.notOk(output.includes(encoding), `no key bytes in logs, /status or /metrics (${encoding.length} chars)`);
      }
    }
  });
});
