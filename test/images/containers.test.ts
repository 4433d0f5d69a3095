/**
 * The two built images, run as an operator runs them (deployment spec 11.1):
 * the project's Docker engine inside the kernel lab (real TCP-AO), a
 * user-defined bridge with fixed addresses, the terminator first, then the
 * initiator with REMOTE_AO. Nothing is pulled: scripts/test-images saves the
 * images on the host and hands the archive in through TCPAO_IMAGES_ARCHIVE.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import {
  builtImages,
  containerJsonLines,
  containerLogs,
  containerState,
  ensureImagesLoaded,
  pollEngine,
  startEngine,
  type Engine,
  imageSuite,
  addGobgpRoute,
} from '../helpers/docker.js';
import { isListening, keyEncodings, topology } from '../helpers/lab.js';
import { readCapture, TCP_OPTION_AO } from '../helpers/wire-capture.js';

const { terminator: TERMINATOR_IMAGE, initiator: INITIATOR_IMAGE } = builtImages();

const NETWORK = 'tcpao-lab';
const BRIDGE = 'tcpao-br0';
const SUBNET = `${topology.initiatorIpv4.split('.').slice(0, 3).join('.')}.0/24`;
const GATEWAY = `${topology.initiatorIpv4.split('.').slice(0, 3).join('.')}.254`;
const COLLECTOR_PORT = 11019;
const ROUTE = '203.0.113.0/24';
const STEP_MS = 120_000;
// Fixed keys of the lab (hex, as `openssl rand -hex 32` prints them); the wrong one differs in every byte.
const KEY = '7f3c9a1e5b2d4f608192a3b4c5d6e7f80112233445566778899aabbccddeeff0';
const WRONG_KEY = '80c365e1a4d2b09f7e6d5c4b3a291807feeddccbbaa99887766554433221100f';
const STOP_TIMEOUT_SECS = 15;

imageSuite(false, (archivePath) => suite(archivePath));

function suite(archivePath: string): void {
  let engine: Engine;
  const scratch = mkdtempSync(join(tmpdir(), 'tcpao-images-'));
  const keyFile = join(scratch, 'tcpao_key');
  writeFileSync(keyFile, `${KEY}\n`, { mode: 0o400 });

  t.before(() => {
    engine = startEngine();
    ensureImagesLoaded(engine, archivePath, [TERMINATOR_IMAGE, INITIATOR_IMAGE]);
    engine.docker(['network', 'rm', NETWORK], { allowFailure: true });
    engine.docker([
      'network', 'create', '--driver', 'bridge', '--subnet', SUBNET, '--gateway', GATEWAY,
      '-o', `com.docker.network.bridge.name=${BRIDGE}`, NETWORK,
    ]);
  });
  t.teardown(() => {
    for (const name of allContainers) engine.docker(['rm', '-f', name], { allowFailure: true });
    engine.docker(['network', 'rm', NETWORK], { allowFailure: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  const allContainers = new Set<string>();
  function removeContainer(name: string): void {
    engine.docker(['rm', '-f', name], { allowFailure: true });
    allContainers.delete(name);
  }

  function runTerminator(name: string, key: { env: string } | { file: string }): void {
    allContainers.add(name);
    engine.docker([
      'run', '-d', '--name', name, '--network', NETWORK, '--ip', topology.terminatorIpv4, '--cap-add', 'NET_ADMIN',
      '--stop-timeout', String(STOP_TIMEOUT_SECS),
      ...keyArgs(key),
      '-e', `LISTEN_AO=0.0.0.0:${topology.wirePort}`, '-e', `FORWARD_PLAIN=127.0.0.1:${COLLECTOR_PORT}`,
      '-e', `PEER_IP=${topology.initiatorIpv4}`, '-e', 'PEER_PORT=0', '-e', 'KEY_ID=1',
      TERMINATOR_IMAGE,
    ]);
  }

  function runInitiator(name: string, key: { env: string } | { file: string }): void {
    allContainers.add(name);
    engine.docker([
      'run', '-d', '--name', name, '--network', NETWORK, '--ip', topology.initiatorIpv4, '--cap-add', 'NET_ADMIN',
      '--stop-timeout', String(STOP_TIMEOUT_SECS),
      ...keyArgs(key),
      '-e', 'LISTEN_PLAIN=127.0.0.1:5000', '-e', `REMOTE_AO=${topology.terminatorIpv4}:${topology.wirePort}`,
      '-e', `PEER_IP=${topology.terminatorIpv4}`, '-e', `PEER_PORT=${topology.wirePort}`, '-e', 'KEY_ID=1',
      INITIATOR_IMAGE,
    ]);
  }

  function keyArgs(key: { env: string } | { file: string }): string[] {
    if ('env' in key) return ['-e', `TCPAO_KEY=${key.env}`];
    return ['-v', `${key.file}:/run/secrets/tcpao_key:ro`, '-e', 'TCPAO_KEY_FILE=/run/secrets/tcpao_key'];
  }

  async function waitForListening(name: string): Promise<void> {
    const up = await pollEngine(() => containerJsonLines(engine, name).some(isListening) || !containerState(engine, name).running, STEP_MS);
    const state = containerState(engine, name);
    if (!up || !state.running) {
      throw new Error(`${name} did not reach "listening" (running=${state.running}, exit ${state.exitCode}):\n${containerLogs(engine, name)}`);
    }
  }

  /** Injects the route into gobgpd, retrying while its API starts. */
  async function injectRoute(name: string): Promise<void> {
    const failed = await addGobgpRoute(engine, name, ROUTE, STEP_MS);
    if (failed !== undefined) throw new Error(`gobgp global rib add failed in ${name}: ${failed}`);
  }

  const collectorHasRoute = (name: string): boolean => containerLogs(engine, name).includes('"203.0.113.0"');

  /** The host-side veth of a container's eth0, found through its iflink. */
  function hostVethOf(name: string): string {
    const iflink = engine.docker(['exec', name, 'cat', '/sys/class/net/eth0/iflink']).stdout.trim();
    for (const ifname of readdirSync('/sys/class/net')) {
      if (readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8').trim() === iflink) return ifname;
    }
    throw new Error(`no host interface with ifindex ${iflink} (the veth of ${name})`);
  }

  t.test('wrong key on the initiator: not a byte reaches the collector, and the log says why', async (tt) => {
    runTerminator('tcpao-gobmp-wrongkey', { env: KEY });
    tt.teardown(() => removeContainer('tcpao-gobmp-wrongkey'));
    await waitForListening('tcpao-gobmp-wrongkey');
    runInitiator('tcpao-gobgp-wrongkey', { env: WRONG_KEY });
    tt.teardown(() => removeContainer('tcpao-gobgp-wrongkey'));
    await waitForListening('tcpao-gobgp-wrongkey');
    await injectRoute('tcpao-gobgp-wrongkey');

    const refused = await pollEngine(
      () => containerJsonLines(engine, 'tcpao-gobgp-wrongkey').some((line) => line['reason'] === 'wire_connect_timeout'),
      STEP_MS,
    );
    tt.ok(refused, 'the initiator logs wire_connect_timeout, with the hint to compare AO counters');
    const terminatorLines = containerJsonLines(engine, 'tcpao-gobmp-wrongkey');
    tt.equal(terminatorLines.filter((line) => line['event'] === 'connection_accepted').length, 0, 'the terminator accepted nothing');
    tt.equal(terminatorLines.filter((line) => line['event'] === 'relay_started').length, 0, 'nothing was relayed to gobmp');
    tt.notOk(collectorHasRoute('tcpao-gobmp-wrongkey'), 'gobmp never saw the route');
    tt.ok(containerState(engine, 'tcpao-gobmp-wrongkey').running, 'the terminator keeps serving');
  });

  t.test('BMP from gobgpd reaches gobmp over TCP-AO; every wire segment carries option 29', async (tt) => {
    runTerminator('tcpao-gobmp', { env: KEY });
    await waitForListening('tcpao-gobmp');
    const capture = join(scratch, 'wire.pcap');
    runInitiator('tcpao-gobgp', { file: keyFile });
    const veth = hostVethOf('tcpao-gobgp');
    const tcpdump = spawn('tcpdump', ['-i', veth, '-U', '-n', '-w', capture, `tcp port ${topology.wirePort}`], { stdio: 'ignore' });
    tt.teardown(() => {
      tcpdump.kill('SIGKILL');
    });
    await waitForListening('tcpao-gobgp');
    await injectRoute('tcpao-gobgp');

    tt.ok(await pollEngine(() => collectorHasRoute('tcpao-gobmp'), STEP_MS), `gobmp dumped ${ROUTE} from the BMP Route Monitoring message`);
    const relayed = containerJsonLines(engine, 'tcpao-gobmp').find((line) => line['event'] === 'relay_started');
    tt.ok(relayed, 'the terminator relayed an authenticated connection');
    tt.ok(
      containerJsonLines(engine, 'tcpao-gobgp').some((line) => line['event'] === 'outbound_ao_applied'),
      'the initiator logged its AO policy applied before connect (spec 11.2)',
    );
    tt.ok(
      containerJsonLines(engine, 'tcpao-gobmp').some((line) => line['event'] === 'listener_ao_installed'),
      'the terminator logged its listener AO policies installed (spec 11.2)',
    );

    tcpdump.kill('SIGINT');
    await new Promise<void>((resolve) => tcpdump.once('exit', () => resolve()));
    const segments = readCapture(capture);
    const unsigned = segments.filter((segment) => !segment.tsharkKinds.includes(TCP_OPTION_AO)).map((segment) => segment.frame);
    tt.ok(segments.length >= 4, `${segments.length} wire segments captured between the containers`);
    tt.same(unsigned, [], 'every captured segment carries the TCP-AO option (kind 29)');
  });

  t.test('the collector port is reachable only through the sidecar', async (tt) => {
    const fromPeer = engine.docker(
      ['exec', 'tcpao-gobgp', 'timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/${topology.terminatorIpv4}/${COLLECTOR_PORT}`],
      { allowFailure: true },
    );
    tt.not(fromPeer.status, 0, `a plain connect from the initiator container to gobmp's ${COLLECTOR_PORT} fails`);
    const fromBridge = spawnSync('timeout', ['5', 'bash', '-c', `exec 3<>/dev/tcp/${topology.terminatorIpv4}/${COLLECTOR_PORT}`]);
    tt.not(fromBridge.status, 0, `a plain connect from the bridge (${GATEWAY}) to gobmp's ${COLLECTOR_PORT} fails`);
    const plainWire = spawnSync('timeout', ['5', 'bash', '-c', `exec 3<>/dev/tcp/${topology.terminatorIpv4}/${topology.wirePort}`]);
    tt.not(plainWire.status, 0, 'a plain (unsigned) connect to the AO wire port gets no answer');
    tt.ok(collectorHasRoute('tcpao-gobmp'), 'the authenticated path still works');
  });

  t.test('no key byte in docker inspect of the file-keyed run, docker history, the saved layers or any log', async (tt) => {
    const encodings = keyEncodings(KEY).concat(keyEncodings(WRONG_KEY));
    const inspect = engine.docker(['inspect', 'tcpao-gobgp']).stdout;
    tt.same(encodings.filter((encoding) => inspect.includes(encoding)), [], 'docker inspect of the file-keyed initiator');
    for (const image of [INITIATOR_IMAGE, TERMINATOR_IMAGE]) {
      const history = engine.docker(['history', '--no-trunc', image]).stdout;
      tt.same(encodings.filter((encoding) => history.includes(encoding)), [], `docker history ${image}`);
    }
    const saved = join(scratch, 'saved');
    mkdirSync(saved);
    engine.docker(['save', '-o', join(saved, 'images.tar'), INITIATOR_IMAGE, TERMINATOR_IMAGE], { timeoutMs: 600_000 });
    const unpacked = spawnSync('tar', ['-xf', join(saved, 'images.tar'), '-C', saved]);
    tt.equal(unpacked.status, 0, 'the saved archive unpacks');
    const layers = walk(saved).filter((path) => path.endsWith('layer.tar'));
    tt.ok(layers.length > 0, `${layers.length} layers saved`);
    const leaking = layers.filter((layer) => {
      const grep = spawnSync('grep', ['-a', '-c', '-F', ...encodings.flatMap((encoding) => ['-e', encoding]), layer], { encoding: 'utf8' });
      return grep.status === 0;
    });
    tt.same(leaking, [], 'no layer holds a key in any encoding');
    for (const name of allContainers) {
      const logs = containerLogs(engine, name);
      tt.same(encodings.filter((encoding) => logs.includes(encoding)), [], `logs of ${name}`);
    }
  });

  t.test('no process of either container has the key in its environment or command line', async (tt) => {
    const encodings = keyEncodings(KEY);
    for (const name of ['tcpao-gobgp', 'tcpao-gobmp']) {
      // docker exec hands the container's configured environment to the scanner itself; clear it there.
      const scan = engine.docker([
        'exec', '-e', 'TCPAO_KEY=', name, 'bash', '-c',
        'for d in /proc/[0-9]*; do [ "${d#/proc/}" = "$$" ] && continue; cat "$d/environ" "$d/cmdline" 2>/dev/null; echo; done',
      ]).stdout;
      tt.same(encodings.filter((encoding) => scan.includes(encoding)), [], `/proc/*/environ and cmdline in ${name}`);
    }
  });

  t.test('docker stop ends the terminator within the stop timeout, drain logged', async (tt) => {
    const started = Date.now();
    engine.docker(['stop', '-t', String(STOP_TIMEOUT_SECS), 'tcpao-gobmp'], { timeoutMs: (STOP_TIMEOUT_SECS + 30) * 1000 });
    const tookMs = Date.now() - started;
    const state = containerState(engine, 'tcpao-gobmp');
    tt.ok(tookMs < STOP_TIMEOUT_SECS * 1000, `stopped in ${tookMs} ms, before Docker's SIGKILL at ${STOP_TIMEOUT_SECS} s`);
    tt.equal(state.exitCode, 143, 'exit status 143: stopped by SIGTERM (docs/deployment-runbook.md)');
    const lines = containerJsonLines(engine, 'tcpao-gobmp');
    tt.ok(lines.some((line) => line['event'] === 'shutdown_started'), 'the sidecar logged shutdown_started');
    tt.ok(lines.some((line) => line['event'] === 'shutdown_finished'), 'the sidecar logged shutdown_finished');
  });

  for (const victim of ['sidecar', 'app'] as const) {
    t.test(`killing the ${victim} inside the container makes the container exit non-zero`, async (tt) => {
      const name = `tcpao-gobmp-kill-${victim}`;
      runTerminator(name, { file: keyFile });
      tt.teardown(() => removeContainer(name));
      await waitForListening(name);
      // docker top lists the container's processes with the lab's own pids; the image has no pkill.
      const pattern = victim === 'sidecar' ? /node .*--mode terminator/ : /^gobmp /;
      const processes = engine.docker(['top', name, '-eo', 'pid,args']).stdout.split('\n').slice(1);
      const target = processes.map((line) => /^\s*(\d+)\s+(.*)$/.exec(line)).find((match) => match !== null && pattern.test(match[2] as string));
      tt.ok(target, `the ${victim} runs in the container`);
      if (target === undefined || target === null) return;
      process.kill(Number(target[1]), 'SIGKILL');
      const exited = await pollEngine(() => !containerState(engine, name).running, STEP_MS);
      tt.ok(exited, 'the container stopped');
      tt.not(containerState(engine, name).exitCode, 0, `exit status ${containerState(engine, name).exitCode}, not 0`);
    });
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

