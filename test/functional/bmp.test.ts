/**
 * The BMP functional test (deployment spec, section 12; `make test-functional-strict`):
 * real gobgpd, stunnel and pmbmpd, each side started through its role's real
 * entrypoint in the namespaces named like the containerlab nodes, with the
 * wire leg captured by dumpcap and read back with tshark. See
 * test/helpers/bmp-lab.ts for the chain.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { aoRequired, skipUnlessAo } from '../helpers/ao.js';
import { keyEncodings, netnsAoCounters, topology, topologyUp, type JsonLine, type LineProcess } from '../helpers/lab.js';
import {
  INJECTED_PREFIX,
  STEP_TIMEOUT_MS,
  WIRE_KEY_ID,
  alive,
  collectorMessages,
  generateKey,
  injectRoute,
  isRouteMonitor,
  readAllLogs,
  runInNode,
  startEntrypoint,
  startNeighbor,
  supervisedPids,
  waitForCollector,
  writeLabFiles,
  type LabFiles,
} from '../helpers/bmp-lab.js';
import { TCP_OPTION_AO, aoProblems, readCapture, startCapture } from '../helpers/wire-capture.js';

// Under qemu without KVM every step is slow; the runner's default would kill the file.
t.setTimeout(90 * 60_000);

const TOOLS = ['gobgpd', 'gobgp', 'pmbmpd', 'stunnel', 'tshark', 'dumpcap', 'openssl', 'ip'];

function missingTools(): string[] {
  return TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } }).status !== 0);
}

function labDir(t: Test): LabFiles {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-bmp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = writeLabFiles(dir);
  t.teardown(() => rmSync(files.runtimeRoot, { recursive: true, force: true }));
  return files;
}

const isEvent = (name: string) => (line: JsonLine) => line['event'] === name;

function assertNoKeyAnywhere(t: Test, key: string, files: LabFiles, processes: readonly LineProcess[]): void {
  const haystacks = [readAllLogs(files), ...processes.map((proc) => proc.text.join(''))];
  const leaks = keyEncodings(key).filter((encoding) => haystacks.some((text) => text.includes(encoding)));
  t.same(leaks, [], 'no encoding of the key in any log, config or output');
}

function delta(after: Record<string, number>, before: Record<string, number>, name: string): number {
  return (after[name] ?? 0) - (before[name] ?? 0);
}

function runFunctional(): void {
  t.test('positive path: a route injected at gobgpd reaches pmbmpd over the TCP-AO wire, every segment signed', async (t) => {
    topologyUp(t);
    const files = labDir(t);
    const key = generateKey();
    const capture = await startCapture(t, topology.terminatorNode, topology.wireIface, `tcp port ${topology.wirePort}`, join(files.dir, 'wire.pcapng'));
    const before = { gobgp: netnsAoCounters(topology.initiatorNode), gobmp: netnsAoCounters(topology.terminatorNode) };

    const terminator = startEntrypoint(t, 'terminator', files, key);
    const installed = await terminator.waitFor(isEvent('listener_ao_installed'), STEP_TIMEOUT_MS, 'listener_ao_installed');
    t.same(
      installed['keysOnListener'],
      [{ peer: `${topology.initiatorIpv4}/32`, sendId: WIRE_KEY_ID, recvId: WIRE_KEY_ID, algorithm: 'hmac(sha256)' }],
      'the terminator installed the bmp-wire key for the initiator before listen()',
    );
    t.equal(installed['aoRequired'], true, 'and requires AO on the listener');

    const initiator = startEntrypoint(t, 'initiator', files, key);
    startNeighbor(t, files);
    await injectRoute(INJECTED_PREFIX);

    const route = await waitForCollector(files, `Route Monitoring for ${INJECTED_PREFIX}`, isRouteMonitor(INJECTED_PREFIX));
    t.equal(route['peer_ip'], '127.0.0.2', "reported as learned from gobgpd's neighbor");
    t.equal(route['as_path'], '64513', "with the neighbor's AS path");
    const messages = collectorMessages(files).filter((message) => message['event_type'] === 'log');
    t.match(messages[0], { bmp_msg_type: 'init', bmp_init_info_sysname: 'GoBGP' }, 'the first BMP message is GoBGP\'s Initiation');
    t.ok(messages.some((message) => message['bmp_msg_type'] === 'peer_up' && message['peer_ip'] === '127.0.0.2'), 'then a Peer Up for the neighbor');

    const applied = await initiator.waitFor(isEvent('outbound_ao_applied'), STEP_TIMEOUT_MS, 'outbound_ao_applied');
    t.match(applied, { currentKey: WIRE_KEY_ID, rnextKey: WIRE_KEY_ID, keysOnSocket: 1 }, 'the initiator applied key 7 before connect');
    t.equal(terminator.events('relay_started').length, 1, 'the terminator relays one authenticated session');
    t.equal(terminator.events('connection_refused').length, 0, 'and refused none');

    const after = { gobgp: netnsAoCounters(topology.initiatorNode), gobmp: netnsAoCounters(topology.terminatorNode) };
    t.ok(delta(after.gobmp, before.gobmp, 'TCPAOGood') > 0, 'TCPAOGood rose in gobmp');
    t.ok(delta(after.gobgp, before.gobgp, 'TCPAOGood') > 0, 'TCPAOGood rose in gobgp');
    for (const counter of ['TCPAOBad', 'TCPAOKeyNotFound', 'TCPAORequired']) {
      t.equal(delta(after.gobmp, before.gobmp, counter), 0, `${counter} stayed put in gobmp`);
      t.equal(delta(after.gobgp, before.gobgp, counter), 0, `${counter} stayed put in gobgp`);
    }

    const initiatorExit = await initiator.stop('SIGTERM');
    t.equal(initiatorExit.code, 143, 'SIGTERM stops the initiator pair (143)');
    const initiatorClosed = await initiator.waitFor(isEvent('connection_closed'), STEP_TIMEOUT_MS, 'connection_closed');
    t.ok(Number(initiatorClosed['bytesClientToUpstream']) > 0, 'the initiator carried bytes onto the wire');
    const wireCounters = initiatorClosed['ao'] as Record<string, string | number>;
    t.ok(BigInt(wireCounters['pktGood'] as string) > 0n, "the wire socket's own counter shows good segments");
    t.equal(wireCounters['pktBad'], '0', 'and no bad ones');
    const terminatorClosed = await terminator.waitFor(isEvent('connection_closed'), STEP_TIMEOUT_MS, 'connection_closed');
    t.equal(terminatorClosed['bytesClientToUpstream'], initiatorClosed['bytesClientToUpstream'], 'every byte the initiator sent reached the app side');
    t.equal((await terminator.stop('SIGTERM')).code, 143, 'SIGTERM stops the terminator pair (143)');
    await capture.stop();

    const segments = readCapture(capture.file);
    t.ok(segments.some((segment) => segment.syn && !segment.ack && segment.src === topology.initiatorIpv4), 'the capture holds the SYN');
    t.ok(segments.some((segment) => segment.syn && segment.ack && segment.src === topology.terminatorIpv4), 'and the SYN-ACK');
    t.ok(segments.some((segment) => segment.flags.includes('F')), 'and a FIN');
    t.ok(segments.filter((segment) => segment.payload.length > 0).length >= 2, 'and data segments');
    const problems = segments.flatMap((segment) => aoProblems(segment, WIRE_KEY_ID, WIRE_KEY_ID));
    t.same(problems, [], `all ${segments.length} segments carry option ${TCP_OPTION_AO} with KeyID/RNextKeyID ${WIRE_KEY_ID} and none carries MD5`);
    const macLengths = new Set(segments.flatMap((segment) => segment.options.flatMap((option) => (option.ao ? [option.ao.macLength] : []))));
    t.same([...macLengths], [12], 'with the 12-byte HMAC-SHA256 MAC');

    const payload = Buffer.concat(segments.map((segment) => segment.payload));
    t.equal(payload.indexOf('GoBGP'), -1, 'no BMP in the clear on the wire (the Initiation names GoBGP)');
    // A BMP stream starts with version 3; stunnel's starts with a TLS handshake record (type 22, version 3.x).
    const firstData = segments.find((segment) => segment.payload.length > 0 && segment.src === topology.initiatorIpv4);
    t.same([...(firstData?.payload.subarray(0, 2) ?? [])], [0x16, 0x03], 'the stream on the wire opens with a TLS handshake record (stunnel), not BMP');

    assertNoKeyAnywhere(t, key, files, [initiator, terminator]);
  });

  t.test('wrong key on one side, then restart behaviour', async (t) => {
    topologyUp(t);
    const files = labDir(t);
    const terminatorKey = generateKey();
    const initiatorKey = generateKey();
    const before = netnsAoCounters(topology.terminatorNode);

    const terminator = startEntrypoint(t, 'terminator', files, terminatorKey);
    await terminator.waitFor(isEvent('listener_ao_installed'), STEP_TIMEOUT_MS, 'listener_ao_installed');
    const initiator = startEntrypoint(t, 'initiator', files, initiatorKey);
    const neighbor = startNeighbor(t, files);
    await injectRoute(INJECTED_PREFIX);

    await t.test('wrong key: nothing reaches pmbmpd; the initiator times out and TCPAOBad rises on the terminator', async (t) => {
      const refused = await initiator.waitFor(isEvent('connection_refused'), STEP_TIMEOUT_MS, 'connection_refused');
      t.equal(refused['reason'], 'wire_connect_timeout', 'the initiator says why: the AO connect timed out');
      const after = netnsAoCounters(topology.terminatorNode);
      t.ok(delta(after, before, 'TCPAOBad') > 0, 'the terminator kernel dropped segments with a bad MAC (TCPAOBad)');
      t.equal(delta(after, before, 'TCPAOGood'), 0, 'and authenticated none (TCPAOGood)');
      t.equal(terminator.events('connection_accepted').length, 0, 'the terminator never accepted a connection');
      t.equal(initiator.events('relay_started').length, 0, 'the initiator never relayed');
      t.same(collectorMessages(files), [], 'pmbmpd logged nothing: not even a session start');
    });

    // The pairs are up but the wire is dead; what is tested now is only how each entrypoint ties its two processes.
    await t.test('restart behaviour: a dead sidecar stops pmbmpd, a dead gobgpd stops the initiator sidecar', async (t) => {
      const terminatorPids = await supervisedPids(terminator);
      process.kill(terminatorPids.sidecar, 'SIGKILL');
      const terminatorExit = await terminator.exited;
      t.equal(terminatorExit.code, 137, "the terminator entrypoint exits non-zero with the sidecar's status");
      t.equal(alive(terminatorPids.app), false, 'pmbmpd was stopped');
      t.match(
        terminator.lines.find((line) => line['module'] === 'supervise' && line['level'] === 50),
        { msg: 'sidecar exited; stopping the app', status: 137 },
        'the supervisor says which process died',
      );
      t.equal(runInNode(topology.terminatorNode, 'ss', ['-Htln']).trim(), '', 'nothing listens in gobmp any more (stunnel went with pmbmpd)');

      await neighbor.stop('SIGTERM');
      const initiatorPids = await supervisedPids(initiator);
      process.kill(initiatorPids.app, 'SIGKILL');
      const initiatorExit = await initiator.exited;
      t.equal(initiatorExit.code, 137, "the initiator entrypoint exits non-zero with gobgpd's status");
      t.equal(alive(initiatorPids.sidecar), false, 'the initiator sidecar was stopped');
      t.match(
        initiator.lines.find((line) => line['module'] === 'supervise' && line['level'] === 50),
        { msg: 'app exited; stopping the sidecar', status: 137 },
        'the supervisor says which process died',
      );
      t.equal(runInNode(topology.initiatorNode, 'ss', ['-Htln']).trim(), '', 'nothing listens in gobgp any more (stunnel went with gobgpd)');
    });

    assertNoKeyAnywhere(t, terminatorKey, files, [initiator, terminator]);
    assertNoKeyAnywhere(t, initiatorKey, files, [initiator, terminator]);
  });
}

if (skipUnlessAo(t)) {
  const missing = missingTools();
  if (missing.length > 0) {
    const reason = `missing ${missing.join(', ')}: run scripts/install-deps`;
    if (aoRequired()) t.fail(reason);
    else t.pass('needs the BMP tools', { skip: reason });
  } else {
    runFunctional();
  }
}
