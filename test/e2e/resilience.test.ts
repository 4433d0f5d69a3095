/**
 * Half-close, a local app that is down, a terminator that is down, a reader
 * that stops reading, and shutdown: each behaves as specified and the sidecar
 * stays up for the next connection.
 */
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { skipUnlessAo } from '../helpers/ao.js';
import { type GlobalOptions } from '../helpers/configs.js';
import { isListening, startInitiatorSidecar, startTerminatorSidecar, startTraffic, topology, topologyUp, type LineProcess } from '../helpers/lab.js';

const KEY = 'resilience-key-0a1b2c3d4e5f6a';
const MIB = 1024 * 1024;

function startTerminator(tt: Test, ports: { wire: number; app: number }, global: GlobalOptions = {}): LineProcess {
  return startTerminatorSidecar(
    tt,
    {
      listenHost: topology.terminatorIpv4,
      wirePort: ports.wire,
      forwardPort: ports.app,
      policies: [{ peer: topology.initiatorIpv4, keyid: 3 }],
      global,
    },
    { TCPAO_KEY: KEY },
  );
}

function startInitiator(tt: Test, ports: { local: number; wire: number }, global: GlobalOptions = {}): LineProcess {
  return startInitiatorSidecar(
    tt,
    {
      listenPort: ports.local,
      remoteHost: topology.terminatorIpv4,
      wirePort: ports.wire,
      policies: [{ peer: topology.terminatorIpv4, keyid: 3 }],
      global,
    },
    { TCPAO_KEY: KEY },
  );
}

async function startApp(tt: Test, port: number, replyBytes: number, option = ''): Promise<LineProcess> {
  const app = startTraffic(tt, topology.terminatorNode, 'app', ['server', `127.0.0.1:${port}`, String(replyBytes), option]);
  await app.waitFor((line) => line['event'] === 'listening');
  return app;
}

async function runClient(tt: Test, localPort: number, bytes: number) {
  const client = startTraffic(tt, topology.initiatorNode, 'client', ['client', `127.0.0.1:${localPort}`, String(bytes), '1']);
  return client.waitFor((line) => line['event'] === 'conn_done', 300_000);
}

function rssBytes(proc: LineProcess): number {
  const status = readFileSync(`/proc/${proc.child.pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

t.test('resilience across the two namespaces', async (t) => {
  if (!skipUnlessAo(t)) return;
  topologyUp(t);

  t.test('half-close: the app replies after the client FIN and the reply arrives', async (tt) => {
    const ports = { local: 25_000, wire: 25_001, app: 25_002 };
    const app = await startApp(tt, ports.app, MIB, 'reply-after-eof');
    await startTerminator(tt, ports).waitFor(isListening);
    await startInitiator(tt, ports).waitFor(isListening);
    const report = await runClient(tt, ports.local, MIB);
    const eof = await app.waitFor((line) => line['event'] === 'peer_eof');
    tt.equal(eof['received'], MIB, "the client's FIN reached the app after all its data");
    tt.equal(report['received'], MIB, 'the reply sent after the FIN reached the client in full');
    const appDone = await app.waitFor((line) => line['event'] === 'conn_done');
    tt.equal(report['receivedSha256'], appDone['sentSha256'], 'the reply is intact');
  });

  t.test('a local app that is down: refused, then served once it is up', async (tt) => {
    const ports = { local: 25_100, wire: 25_101, app: 25_102 };
    const terminator = startTerminator(tt, ports);
    await terminator.waitFor(isListening);
    await startInitiator(tt, ports).waitFor(isListening);
    const first = await runClient(tt, ports.local, 4096);
    tt.equal(first['received'], 0, 'the client got nothing while the app was down');
    const refused = await terminator.waitFor((line) => line['event'] === 'connection_refused');
    tt.equal(refused['reason'], 'app_unreachable', 'the terminator logged the app as unreachable');

    await startApp(tt, ports.app, 4096);
    const second = await runClient(tt, ports.local, 4096);
    tt.equal(second['received'], 4096, 'the next connection is served');
  });

  t.test('a terminator that is down: refused, then served once it is up', async (tt) => {
    const ports = { local: 25_200, wire: 25_201, app: 25_202 };
    const initiator = startInitiator(tt, ports, { connectTimeoutSecs: 2 });
    await initiator.waitFor(isListening);
    const first = await runClient(tt, ports.local, 4096);
    tt.equal(first['received'], 0, 'the client got nothing while the terminator was down');
    const refused = await initiator.waitFor((line) => line['event'] === 'connection_refused');
    tt.match(String(refused['reason']), /^wire_connect_(timeout|refused)$/, 'the initiator logged the wire failure');
    tt.equal(initiator.child.exitCode, null, 'the initiator stays up');

    await startApp(tt, ports.app, 4096);
    await startTerminator(tt, ports).waitFor(isListening);
    const second = await runClient(tt, ports.local, 4096);
    tt.equal(second['received'], 4096, 'the next connection is served');
  });

  t.test('a reader that stops reading does not make the sidecars buffer without bound', async (tt) => {
    const ports = { local: 25_300, wire: 25_301, app: 25_302 };
    const app = await startApp(tt, ports.app, 0, 'pause-read=8000');
    const terminator = startTerminator(tt, ports);
    await terminator.waitFor(isListening);
    const initiator = startInitiator(tt, ports);
    await initiator.waitFor(isListening);
    const baseline = Math.max(rssBytes(initiator), rssBytes(terminator));
    const client = startTraffic(tt, topology.initiatorNode, 'client', ['client', `127.0.0.1:${ports.local}`, String(128 * MIB), '1']);
    await app.waitFor((line) => line['event'] === 'accepted');
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const grown = Math.max(rssBytes(initiator), rssBytes(terminator)) - baseline;
    tt.ok(grown < 48 * MIB, `with 128 MiB offered and the app not reading, each sidecar grew by less than 48 MiB`);
    const report = await client.waitFor((line) => line['event'] === 'conn_done', 300_000);
    const appDone = await app.waitFor((line) => line['event'] === 'conn_done', 300_000);
    tt.equal(appDone['received'], 128 * MIB, 'once the app reads again every byte arrives');
    tt.equal(appDone['receivedSha256'], report['sentSha256'], 'intact');
  });

  t.test('SIGTERM drains open relays within the deadline and exits 0', async (tt) => {
    const ports = { local: 25_400, wire: 25_401, app: 25_402 };
    await startApp(tt, ports.app, 0, 'pause-read=1500');
    const terminator = startTerminator(tt, ports, { shutdownTimeoutSecs: 20 });
    await terminator.waitFor(isListening);
    const initiator = startInitiator(tt, ports, { shutdownTimeoutSecs: 20 });
    await initiator.waitFor(isListening);
    const client = startTraffic(tt, topology.initiatorNode, 'client', ['client', `127.0.0.1:${ports.local}`, String(4 * MIB), '1']);
    await initiator.waitFor((line) => line['event'] === 'relay_started');
    initiator.child.kill('SIGTERM');
    const report = await client.waitFor((line) => line['event'] === 'conn_done', 120_000);
    tt.equal(report['sent'], 4 * MIB, 'the open relay finished its transfer during the drain');
    tt.equal((await initiator.exited).code, 0, 'the initiator exited 0 after a clean drain');
    const finished = initiator.events('shutdown_finished')[0];
    tt.equal(finished?.['clean'], true, 'the shutdown was clean');
  });
});
