/**
 * /status and /metrics of a running initiator and terminator across the
 * two-namespace topology: with a stream paused (so the sockets are idle),
 * the pages agree with each other and with the bytes the client sent, show
 * the AO state read from both wire sockets, and a reload shows up in both.
 */
import t, { type Test } from 'tap';
import { skipUnlessAo } from '../helpers/ao.js';
import { isListening, keyEncodings, topology, topologyUp } from '../helpers/lab.js';
import { parseMetrics, sampleValue } from '../helpers/prometheus.js';
import {
  eventually,
  ReloadableSidecar,
  sideToml,
  startEcho,
  startPacedClient,
  type SideConfig,
  type StatusBody,
} from '../helpers/rotation.js';

const KEY = 'observability-key-5c1d9e2f';
const PORTS = { local: 26_000, wire: 26_001, app: 26_002, initiatorMetrics: 26_010, terminatorMetrics: 26_011 };

function config(side: ReloadableSidecar): string {
  const common: Omit<SideConfig, 'mode' | 'localPort' | 'peer' | 'wireHost'> = {
    wirePort: PORTS.wire,
    metricsPort: side.metricsPort,
    pidFile: side.pidFile,
    keys: [{ sendId: 5, recvId: 6, role: 'preferred', source: 'env:TCPAO_KEY' }],
  };
  return side.mode === 'initiator'
    ? sideToml({ ...common, mode: 'initiator', localPort: PORTS.local, peer: topology.terminatorIpv4, wireHost: topology.terminatorIpv4 })
    : sideToml({
        ...common,
        mode: 'terminator',
        localPort: PORTS.app,
        peer: topology.initiatorIpv4,
        wireHost: topology.terminatorIpv4,
        keys: [{ sendId: 6, recvId: 5, role: 'preferred', source: 'env:TCPAO_KEY' }],
      });
}

/** Two /status reads in a row with the same AO counters: the wire is idle. */
async function idleStatus(side: ReloadableSidecar): Promise<StatusBody> {
  let previous: string | undefined;
  return eventually(`the ${side.mode}'s counters to settle`, async () => {
    const status = await side.status();
    const counters = JSON.stringify(status.connections.map((connection) => [connection.ao, connection.keys]));
    const settled = counters === previous;
    previous = counters;
    return settled ? status : undefined;
  });
}

t.test('/status and /metrics on both sides of a live connection', async (t: Test) => {
  if (!skipUnlessAo(t)) return;
  topologyUp(t);
  const terminator = new ReloadableSidecar(t, topology.terminatorNode, 'terminator', PORTS.terminatorMetrics);
  const initiator = new ReloadableSidecar(t, topology.initiatorNode, 'initiator', PORTS.initiatorMetrics);
  const app = startEcho(t, topology.terminatorNode, PORTS.app);
  await app.waitFor((line) => line['event'] === 'listening', 300_000);
  for (const side of [terminator, initiator]) {
    side.writeConfig(config(side));
    side.start(t, { TCPAO_KEY: KEY });
    await side.proc.waitFor(isListening, 300_000);
    const listening = await side.proc.waitFor((line) => line['event'] === 'metrics_listening', 300_000);
    t.equal(listening['address'], `127.0.0.1:${side.metricsPort ?? 0}`, `the ${side.mode} serves metrics on loopback`);
  }
  const bodies: string[] = [];

  const client = startPacedClient(t, topology.initiatorNode, PORTS.local, 8_192, 5);
  await client.waitFor((line) => line['event'] === 'connected', 300_000);
  await eventually('bytes through the terminator', async () => {
    const connection = (await terminator.status()).connections[0];
    return connection !== undefined && connection.bytesClientToUpstream > 100_000 ? true : undefined;
  });
  client.child.kill('SIGUSR1');
  const paused = await client.waitFor((line) => line['event'] === 'paused', 300_000);
  const sent = paused['sent'] as number;

  t.test('the byte counts match what the client sent and got back', async (tt) => {
    for (const side of [initiator, terminator]) {
      const connection = await eventually(`the ${side.mode} to relay every byte`, async () => {
        const found = (await side.status()).connections[0];
        return found !== undefined && found.bytesClientToUpstream === sent && found.bytesUpstreamToClient === sent ? found : undefined;
      });
      tt.equal(connection.bytesClientToUpstream, sent, `${side.mode}: bytes towards the app = bytes the client sent`);
      tt.equal(connection.bytesUpstreamToClient, sent, `${side.mode}: bytes back = the echo`);
    }
  });

  t.test('/status shows the AO state of each wire socket', async (tt) => {
    const terminatorStatus = await idleStatus(terminator);
    const initiatorStatus = await idleStatus(initiator);
    bodies.push(JSON.stringify(terminatorStatus), JSON.stringify(initiatorStatus));
    for (const [status, sendId, recvId] of [
      [terminatorStatus, 6, 5],
      [initiatorStatus, 5, 6],
    ] as const) {
      tt.equal(status.config.generation, 1, `${status.mode}: config generation 1`);
      tt.equal(status.config.lastReload, null, `${status.mode}: no reload yet`);
      tt.equal(status.totals['connectionsOpen'], 1);
      const connection = status.connections[0];
      tt.equal(connection?.currentKey, sendId, `${status.mode}: sends with its send_id ${sendId}`);
      tt.equal(connection?.rnextKey, recvId, `${status.mode}: asks for its recv_id ${recvId}`);
      tt.ok((connection?.ao?.['pktGood'] ?? 0) > 0, `${status.mode}: authenticated segments counted`);
      tt.equal(connection?.ao?.['pktBad'], 0, `${status.mode}: no bad segment`);
      tt.ok((connection?.ageSecs ?? -1) >= 0, `${status.mode}: connection age`);
      tt.same(connection?.keys.map((key) => [key.sendId, key.recvId, key.isCurrent, key.isRnext]), [[sendId, recvId, true, true]]);
    }
    tt.equal(terminatorStatus.connections[0]?.wirePeer, topology.initiatorIpv4, 'the terminator names the initiator as wire peer');
    tt.equal(initiatorStatus.connections[0]?.wirePeer, topology.terminatorIpv4, 'the initiator names the terminator as wire peer');
    tt.equal(terminatorStatus.listeners[0]?.kind, 'ao');
    tt.same(terminatorStatus.listeners[0]?.keys.map((key) => key.sendId), [6], 'the AO listener holds the key');
  });

  t.test('/metrics parses and its counters match the sockets', async (tt) => {
    for (const side of [terminator, initiator]) {
      const before = await idleStatus(side);
      const text = await side.metrics();
      const after = await side.status();
      bodies.push(text);
      tt.same(
        after.connections.map((connection) => connection.ao),
        before.connections.map((connection) => connection.ao),
        `${side.mode}: idle while /metrics was read`,
      );
      const families = parseMetrics(text);
      tt.equal(sampleValue(families, 'tcpao_proxy_info', { mode: side.mode }), 1);
      tt.equal(sampleValue(families, 'tcpao_proxy_connections_open'), 1);
      for (const connection of before.connections) {
        const socket = `conn ${connection.id}`;
        for (const [result, field] of [
          ['good', 'pktGood'],
          ['bad', 'pktBad'],
          ['key_not_found', 'pktKeyNotFound'],
          ['ao_required', 'pktAoRequired'],
          ['dropped_icmp', 'pktDroppedIcmp'],
        ] as const) {
          tt.equal(sampleValue(families, 'tcpao_proxy_ao_packets_total', { socket, result }), connection.ao?.[field], `${side.mode} ${socket}: ${result}`);
        }
        tt.equal(sampleValue(families, 'tcpao_proxy_current_key_id', { socket }), connection.currentKey);
        tt.equal(sampleValue(families, 'tcpao_proxy_rnext_key_id', { socket }), connection.rnextKey);
        tt.equal(
          sampleValue(families, 'tcpao_proxy_connection_bytes_total', { conn: String(connection.id), direction: 'client_to_upstream' }),
          sent,
          `${side.mode}: byte counter = bytes the client sent`,
        );
        for (const key of connection.keys) {
          tt.equal(
            sampleValue(families, 'tcpao_proxy_key_packets_total', { socket, send_id: String(key.sendId), recv_id: String(key.recvId), result: 'good' }),
            key.pktGood,
            `${side.mode}: key ${key.sendId}/${key.recvId} good segments`,
          );
        }
      }
    }
  });

  t.test('a reload shows in /status and /metrics', async (tt) => {
    const run = await terminator.reload();
    tt.equal(run.status, 0);
    const outcome = await terminator.reloadOutcome(1);
    tt.equal(outcome['event'], 'reload_applied');
    const status = await terminator.status();
    tt.equal(status.config.generation, 2);
    tt.equal(status.config.lastReload?.result, 'applied');
    tt.ok(Date.parse(status.config.lastReload?.at ?? '') > 0, 'with its time');
    const families = parseMetrics(await terminator.metrics());
    tt.equal(sampleValue(families, 'tcpao_proxy_config_generation'), 2);
    tt.equal(sampleValue(families, 'tcpao_proxy_reloads_total', { result: 'applied' }), 1);
    tt.equal(sampleValue(families, 'tcpao_proxy_last_reload_success'), 1);
    tt.equal(status.connections.length, 1, 'the connection is still there');
  });

  t.test('the stream finishes intact', async (tt) => {
    client.child.kill('SIGUSR2');
    const done = await client.waitFor((line) => line['event'] === 'conn_done', 60_000);
    const appDone = await app.waitFor((line) => line['event'] === 'conn_done', 60_000);
    tt.equal(appDone['receivedSha256'], done['sentSha256'], 'the app received exactly what was sent');
    tt.equal(done['receivedSha256'], done['sentSha256'], 'the echo came back intact');
  });

  t.test('no key bytes in the logs or the pages', async (tt) => {
    const output = [initiator.proc, terminator.proc].flatMap((proc) => proc.text).join('') + bodies.join('');
    for (const encoding of keyEncodings(KEY)) tt.notOk(output.includes(encoding), `no key bytes in logs or pages (${encoding.length} chars)`);
  });
});
