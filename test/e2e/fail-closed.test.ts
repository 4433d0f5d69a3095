/**
 * Fail closed: whenever the two sides do not share a key for each other, or a
 * client skips TCP-AO, the local app receives nothing, the initiator's local
 * client is closed, the refusal is logged with a reason, and the kernel's
 * counters show why.
 */
import t, { type Test } from 'tap';
import { skipUnlessAo } from '../helpers/ao.js';
import { pollUntil } from '../helpers/wait.js';
import { type PolicyOptions } from '../helpers/configs.js';
import {
  isListening,
  keyEncodings,
  netnsAoCounters,
  startInitiatorSidecar,
  startTerminatorSidecar,
  startTraffic,
  topology,
  topologyUp,
  type LineProcess,
} from '../helpers/lab.js';

const KEY = 'fail-closed-key-1a2b3c4d5e6f';
const OTHER_KEY = 'fail-closed-key-ffffffffffff';

interface DenyCase {
  readonly name: string;
  readonly terminatorPolicy: PolicyOptions;
  readonly initiatorPolicy: PolicyOptions;
  readonly initiatorKey: string;
  readonly counter: string;
}

const cases: DenyCase[] = [
  {
    name: 'a different key',
    terminatorPolicy: { peer: topology.initiatorIpv4, keyid: 7 },
    initiatorPolicy: { peer: topology.terminatorIpv4, keyid: 7 },
    initiatorKey: OTHER_KEY,
    counter: 'TCPAOBad',
  },
  {
    name: 'a different key id',
    terminatorPolicy: { peer: topology.initiatorIpv4, keyid: 7 },
    initiatorPolicy: { peer: topology.terminatorIpv4, keyid: 8 },
    initiatorKey: KEY,
    counter: 'TCPAOKeyNotFound',
  },
  {
    name: 'a different algorithm',
    terminatorPolicy: { peer: topology.initiatorIpv4, keyid: 7, macAlg: 'hmac-sha256' },
    initiatorPolicy: { peer: topology.terminatorIpv4, keyid: 7, macAlg: 'hmac-sha1' },
    initiatorKey: KEY,
    counter: 'TCPAOBad',
  },
  {
    name: 'a peer address outside every policy',
    terminatorPolicy: { peer: '10.10.10.99', keyid: 7 },
    initiatorPolicy: { peer: topology.terminatorIpv4, keyid: 7 },
    initiatorKey: KEY,
    counter: 'TCPAOKeyNotFound',
  },
];

async function startTerminator(tt: Test, policy: PolicyOptions, ports: { wire: number; app: number }) {
  const app = startTraffic(tt, topology.terminatorNode, 'app', ['server', `127.0.0.1:${ports.app}`, '1024']);
  await app.waitFor((line) => line['event'] === 'listening');
  const terminator = startTerminatorSidecar(
    tt,
    { listenHost: topology.terminatorIpv4, wirePort: ports.wire, forwardPort: ports.app, policies: [policy] },
    { TCPAO_KEY: KEY },
  );
  await terminator.waitFor(isListening);
  return { app, terminator };
}

function assertNoKeys(tt: Test, procs: readonly LineProcess[]) {
  const output = procs.flatMap((proc) => proc.text).join('');
  for (const key of [KEY, OTHER_KEY]) {
    for (const encoding of keyEncodings(key)) tt.notOk(output.includes(encoding), 'no key bytes in sidecar output');
  }
}

t.test('fail closed across the two namespaces', async (t) => {
  if (!skipUnlessAo(t)) return;
  topologyUp(t);

  cases.forEach((deny, index) => {
    t.test(`a terminator and an initiator with ${deny.name}`, async (tt) => {
      const ports = { local: 24_000 + index * 10, wire: 24_001 + index * 10, app: 24_002 + index * 10 };
      const { app, terminator } = await startTerminator(tt, deny.terminatorPolicy, ports);
      const initiator = startInitiatorSidecar(
        tt,
        {
          listenPort: ports.local,
          remoteHost: topology.terminatorIpv4,
          wirePort: ports.wire,
          policies: [deny.initiatorPolicy],
        },
        { TCPAO_KEY: deny.initiatorKey },
      );
      await initiator.waitFor(isListening);
      const before = netnsAoCounters(topology.terminatorNode);

      const client = startTraffic(tt, topology.initiatorNode, 'client', ['client', `127.0.0.1:${ports.local}`, '4096', '1']);
      const report = await client.waitFor((line) => line['event'] === 'conn_done', 60_000);
      tt.equal(report['received'], 0, 'the local client received nothing');
      tt.ok(report['error'] === 'ECONNRESET' || report['error'] === undefined, 'the local client was closed');

      const refused = await initiator.waitFor((line) => line['event'] === 'connection_refused');
      tt.equal(refused['reason'], 'wire_connect_timeout', 'the initiator logged why');
      tt.match(String(refused['msg']), /AO counters/, 'the refusal points at the AO counters');

      const after = netnsAoCounters(topology.terminatorNode);
      tt.ok((after[deny.counter] ?? 0) > (before[deny.counter] ?? 0), `${deny.counter} rose on the terminator's side`);
      tt.equal(app.events('accepted').length, 0, 'the local app never saw a connection');
      tt.equal(terminator.events('connection_accepted').length, 0, 'the terminator never accepted a connection');

      const stillUp = initiator.child.exitCode === null && terminator.child.exitCode === null;
      tt.ok(stillUp, 'both sidecars stay up');
      assertNoKeys(tt, [initiator, terminator]);
    });
  });

  t.test('a client without TCP-AO straight to the terminator', async (tt) => {
    const ports = { wire: 24_101, app: 24_102 };
    const { app, terminator } = await startTerminator(tt, { peer: topology.initiatorIpv4, keyid: 7 }, ports);
    const before = netnsAoCounters(topology.terminatorNode);
    const plain = startTraffic(tt, topology.initiatorNode, 'plain-client', [
      'client',
      `${topology.terminatorIpv4}:${ports.wire}`,
      '4096',
      '1',
    ]);
    await plain.waitFor((line) => line['event'] === 'client_started');
    // The SYN is dropped, so the plain connect never completes; watch the counter for its retransmissions.
    const rose = await pollUntil(
      () => (netnsAoCounters(topology.terminatorNode)['TCPAORequired'] ?? 0) > (before['TCPAORequired'] ?? 0),
      60_000,
      // Each probe runs nstat in the netns.
      500,
    );
    tt.ok(rose, 'TCPAORequired rose on the terminator');
    tt.equal(plain.events('connected').length, 0, 'the plain client never connected');
    tt.equal(app.events('accepted').length, 0, 'the local app never saw a connection');
    tt.equal(terminator.events('connection_accepted').length, 0, 'the terminator accepted nothing');
    assertNoKeys(tt, [terminator]);
  });
});
