/**
 * Initiator -> TCP-AO wire -> terminator across the two-namespace topology:
 * data integrity both ways over IPv4 and IPv6, and many connections at once.
 */
import t, { type Test } from 'tap';
import { skipUnlessAo } from '../helpers/ao.js';
import {
  isListening,
  keyEncodings,
  startInitiatorSidecar,
  startTerminatorSidecar,
  startTraffic,
  topology,
  topologyUp,
  type JsonLine,
  type LineProcess,
} from '../helpers/lab.js';

const KEY = 'e2e-relay-key-9f8e7d6c5b4a';
const MIB = 1024 * 1024;

interface Chain {
  readonly initiator: LineProcess;
  readonly terminator: LineProcess;
  readonly app: LineProcess;
  readonly localPort: number;
}

async function startChain(
  tt: Test,
  family: 4 | 6,
  ports: { local: number; wire: number; app: number },
  replyBytes: number,
): Promise<Chain> {
  const initiatorAddress = family === 4 ? topology.initiatorIpv4 : topology.initiatorIpv6;
  const terminatorAddress = family === 4 ? topology.terminatorIpv4 : topology.terminatorIpv6;
  const app = startTraffic(tt, topology.terminatorNode, 'app', ['server', `127.0.0.1:${ports.app}`, String(replyBytes)]);
  await app.waitFor((line) => line['event'] === 'listening');
  const terminator = startTerminatorSidecar(
    tt,
    {
      listenHost: terminatorAddress,
      wirePort: ports.wire,
      forwardPort: ports.app,
      policies: [{ peer: initiatorAddress, keyid: 7 }],
    },
    { TCPAO_KEY: KEY },
  );
  await terminator.waitFor(isListening);
  const initiator = startInitiatorSidecar(
    tt,
    {
      listenPort: ports.local,
      remoteHost: terminatorAddress,
      wirePort: ports.wire,
      policies: [{ peer: terminatorAddress, keyid: 7 }],
    },
    { TCPAO_KEY: KEY },
  );
  await initiator.waitFor(isListening);
  return { initiator, terminator, app, localPort: ports.local };
}

/** Scans everything both sidecars printed for the key, in every encoding the config accepts. */
function assertNoKeyLeak(tt: Test, chain: Chain): void {
  const output = [chain.initiator, chain.terminator].flatMap((proc) => proc.text).join('');
  for (const encoding of keyEncodings(KEY)) {
    tt.notOk(output.includes(encoding), `sidecar output never contains the key (${encoding.length} chars)`);
  }
}

function doneReports(proc: LineProcess): JsonLine[] {
  return proc.events('conn_done');
}

async function runClient(tt: Test, chain: Chain, bytes: number, count: number) {
  const client = startTraffic(tt, topology.initiatorNode, 'client', [
    'client',
    `127.0.0.1:${chain.localPort}`,
    String(bytes),
    String(count),
  ]);
  await client.waitFor((line) => line['event'] === 'client_done', 600_000);
  return client;
}

/** Pairs each client report with the app report whose received hash matches what the client sent. */
function assertIntact(tt: Test, client: LineProcess, app: LineProcess, bytes: number) {
  const clientReports = doneReports(client);
  const appReports = doneReports(app);
  tt.equal(appReports.length, clientReports.length, 'the app saw every connection end');
  for (const report of clientReports) {
    tt.notOk(report['error'], 'client connection ended without error');
    tt.equal(report['sent'], bytes, 'client sent every byte');
    const peer = appReports.find((candidate) => candidate['receivedSha256'] === report['sentSha256']);
    tt.ok(peer, 'the app received exactly what the client sent (SHA-256)');
    tt.equal(peer?.['received'], bytes, 'the app received every byte');
    tt.equal(report['received'], bytes, 'the client received every byte of the reply');
    tt.equal(report['receivedSha256'], peer?.['sentSha256'], 'the client received exactly what the app sent (SHA-256)');
  }
}

t.test('the AO relay chain across two namespaces', async (t) => {
  if (!skipUnlessAo(t)) return;
  topologyUp(t);

  for (const family of [4, 6] as const) {
    t.test(`64 MiB each way over IPv${family} arrive intact`, async (tt) => {
      const base = family === 4 ? 21_000 : 22_000;
      const chain = await startChain(tt, family, { local: base, wire: base + 1, app: base + 2 }, 64 * MIB);
      const client = await runClient(tt, chain, 64 * MIB, 1);
      await chain.app.waitFor((line) => line['event'] === 'conn_done');
      assertIntact(tt, client, chain.app, 64 * MIB);

      const closed = await chain.terminator.waitFor((line) => line['event'] === 'connection_closed');
      tt.equal(closed['bytesClientToUpstream'], 64 * MIB, 'terminator logged the bytes relayed to the app');
      tt.equal(closed['bytesUpstreamToClient'], 64 * MIB, 'terminator logged the bytes relayed to the wire');
      const ao = closed['ao'] as Record<string, string> | undefined;
      tt.ok(ao !== undefined && BigInt(ao['pktGood'] ?? '0') > 0n, 'the wire socket counted authenticated segments');
      tt.equal(ao?.['pktBad'], '0', 'no segment failed authentication');
      const applied = await chain.initiator.waitFor((line) => line['event'] === 'outbound_ao_applied');
      tt.equal(applied['currentKey'], 7, 'the initiator sent with key id 7');
      assertNoKeyLeak(tt, chain);
    });
  }

  t.test('many concurrent connections stay intact', async (tt) => {
    const chain = await startChain(tt, 4, { local: 23_000, wire: 23_001, app: 23_002 }, 2 * MIB);
    const client = await runClient(tt, chain, 2 * MIB, 24);
    await chain.app.waitFor(() => doneReports(chain.app).length >= 24, 120_000);
    assertIntact(tt, client, chain.app, 2 * MIB);
    // The terminator logs a close once both legs are down, which can trail the app's own report.
    await chain.terminator.waitFor(() => chain.terminator.events('connection_closed').length >= 24, 60_000, '24 connection_closed lines');
    tt.equal(chain.terminator.events('connection_closed').length, 24, 'terminator closed 24 relays');
    assertNoKeyLeak(tt, chain);
  });
});
