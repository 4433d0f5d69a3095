/**
 * deploy/compose/docker-compose.yml brought up for real (deployment spec
 * 11.1), as docs/deployment-runbook.md section 5 tells an operator: Debian's
 * docker-compose (v1) against the project's Docker engine inside the kernel
 * lab (real TCP-AO), the key as a file secret, the pinned images of
 * `make images`. The terminator starts first, both sides log listening, a
 * route injected into gobgpd reaches gobmp as BMP, the wire carries TCP-AO,
 * no key byte shows in the logs or in docker inspect, and `down` leaves
 * nothing behind. Cold start and `down` are timed and printed as comments.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import {
  builtImages,
  containerJsonLines,
  containerLogs,
  ensureImagesLoaded,
  pollEngine,
  startEngine,
  type Engine,
  imageSuite,
  containerAoCounters,
  addGobgpRoute,
} from '../helpers/docker.js';
import { isListening, keyEncodings, REPO, topology, type JsonLine } from '../helpers/lab.js';
import { readCapture, TCP_OPTION_AO } from '../helpers/wire-capture.js';

const COMPOSE = '/usr/bin/docker-compose';
const COMPOSE_FILE = join(REPO, 'deploy', 'compose', 'docker-compose.yml');
// The runbook's project name and the compose file's container names.
const PROJECT = 'tcpao-lab';
const TERMINATOR = 'tcpao-lab-gobmp';
const INITIATOR = 'tcpao-lab-gobgp';
const PROJECT_LABEL = `label=com.docker.compose.project=${PROJECT}`;
const ROUTE = '203.0.113.0/24';
const STEP_MS = 180_000;
const COMPOSE_TIMEOUT_MS = 300_000;
// The compose file's stop_grace_period; Docker sends SIGKILL after it.
const STOP_GRACE_SECS = 15;
const SIGKILL_EXIT = 137;

imageSuite(false, (archivePath) => suite(archivePath));

/** When a JSON log line was written: pino's ISO time, or the entrypoint's epoch milliseconds. */
function lineTimeMs(line: JsonLine): number {
  const time = line['time'];
  if (typeof time === 'number') return time;
  if (typeof time === 'string') return Date.parse(time);
  return Number.NaN;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function suite(archivePath: string): void {
  let engine: Engine;
  const scratch = mkdtempSync(join(tmpdir(), 'tcpao-compose-'));
  // As the runbook makes it: umask 077; openssl rand -hex 32 > tcpao.key
  const key = randomBytes(32).toString('hex');
  const keyFile = join(scratch, 'tcpao.key');
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  const capture = join(scratch, 'wire.pcap');
  let tcpdump: ChildProcess | undefined;
  let interfacesBefore: string[] = [];
  let upStartedMs = 0;
  let networkId = '';

  /** docker-compose -p tcpao-lab -f deploy/compose/docker-compose.yml ARGS, against the project's engine. */
  function compose(args: readonly string[], options: { allowFailure?: boolean } = {}): SpawnSyncReturns<string> {
    const env: NodeJS.ProcessEnv = { ...engine.env, TCPAO_COMPOSE_KEY_FILE: keyFile };
    // The images default to images.json's tags, the ones `make images` built.
    delete env['GOBMP_TCPAO_IMAGE'];
    delete env['GOBGP_TCPAO_IMAGE'];
    const result = spawnSync(COMPOSE, ['-p', PROJECT, '-f', COMPOSE_FILE, ...args], {
      cwd: REPO,
      encoding: 'utf8',
      env,
      timeout: COMPOSE_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (!options.allowFailure && result.status !== 0) {
      throw new Error(`docker-compose ${args.join(' ')} exited ${String(result.status)}: ${result.stderr.trim()}`);
    }
    return result;
  }

  const projectContainers = (): string[] =>
    engine.docker(['ps', '-a', '-q', '--filter', PROJECT_LABEL]).stdout.split('\n').filter((id) => id.length > 0);
  const projectNetworks = (): string[] =>
    engine.docker(['network', 'ls', '-q', '--filter', PROJECT_LABEL]).stdout.split('\n').filter((id) => id.length > 0);

  async function listeningAt(name: string): Promise<number> {
    let found: JsonLine | undefined;
    const up = await pollEngine(() => {
      found = containerJsonLines(engine, name).find(isListening);
      return found !== undefined;
    }, STEP_MS);
    if (!up || found === undefined) throw new Error(`${name} did not log "listening":\n${containerLogs(engine, name)}`);
    return lineTimeMs(found);
  }

  t.before(async () => {
    engine = startEngine();
    const images = builtImages();
    ensureImagesLoaded(engine, archivePath, [images.initiator, images.terminator]);
    compose(['down', '--remove-orphans'], { allowFailure: true });
    interfacesBefore = readdirSync('/sys/class/net').sort();
    // Every interface, so the capture sees the bridge and veths compose is about to make, from the first SYN.
    const started = spawn('tcpdump', ['-i', 'any', '-U', '-n', '-w', capture, `tcp port ${topology.wirePort}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    tcpdump = started;
    const ready = await new Promise<boolean>((resolve) => {
      let stderr = '';
      started.once('error', () => resolve(false));
      started.once('exit', () => resolve(false));
      started.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.includes('listening on')) resolve(true);
      });
    });
    if (!ready) throw new Error('tcpdump did not start (scripts/install-deps installs it)');
  });
  t.teardown(() => {
    tcpdump?.kill('SIGKILL');
    compose(['down', '--remove-orphans'], { allowFailure: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  t.test('docker-compose up -d: the terminator starts first, then each side logs listening', async (tt) => {
    upStartedMs = Date.now();
    const up = compose(['up', '-d']);
    const upReturned = Date.now() - upStartedMs;
    const output = `${up.stdout}${up.stderr}`;
    tt.ok(output.indexOf(`Creating ${TERMINATOR}`) >= 0, `compose created ${TERMINATOR}`);
    tt.ok(
      output.indexOf(`Creating ${TERMINATOR}`) < output.indexOf(`Creating ${INITIATOR}`),
      `compose created ${TERMINATOR} before ${INITIATOR} (depends_on)`,
    );
    const startedAt = (name: string): number =>
      Date.parse(engine.docker(['inspect', '--format', '{{.State.StartedAt}}', name]).stdout.trim());
    tt.ok(startedAt(TERMINATOR) <= startedAt(INITIATOR), 'the terminator container started before the initiator container');

    const terminatorListening = await listeningAt(TERMINATOR);
    const initiatorListening = await listeningAt(INITIATOR);
    const toTerminator = terminatorListening - upStartedMs;
    const toInitiator = initiatorListening - upStartedMs;
    tt.ok(Number.isFinite(toTerminator), `${TERMINATOR} logged listener_ao_installed`);
    tt.ok(Number.isFinite(toInitiator), `${INITIATOR} logged listening`);
    tt.comment(`cold start: compose up returned after ${seconds(upReturned)}`);
    tt.comment(`cold start: compose up -> terminator listening ${seconds(toTerminator)}`);
    tt.comment(`cold start: compose up -> initiator listening ${seconds(toInitiator)}`);
    networkId = engine.docker(['network', 'ls', '-q', '--no-trunc', '--filter', PROJECT_LABEL]).stdout.trim();
    tt.match(networkId, /^[0-9a-f]{64}$/, 'compose made one network for the project');
  });

  t.test('a route injected into gobgpd reaches gobmp as BMP through both sidecars', async (tt) => {
    const failed = await addGobgpRoute(engine, INITIATOR, ROUTE, STEP_MS);
    tt.equal(failed, undefined, `docker exec ${INITIATOR} gobgp global rib add ${ROUTE}`);
    const arrived = await pollEngine(() => containerLogs(engine, TERMINATOR).includes('"203.0.113.0"'), STEP_MS);
    tt.ok(arrived, `gobmp dumped ${ROUTE} from the BMP Route Monitoring message`);
    if (arrived) tt.comment(`compose up -> route seen in gobmp's output ${seconds(Date.now() - upStartedMs)}`);
    tt.ok(containerJsonLines(engine, TERMINATOR).some((line) => line['event'] === 'relay_started'), 'the terminator relayed an authenticated connection');
    tt.ok(
      containerJsonLines(engine, INITIATOR).some((line) => line['event'] === 'outbound_ao_applied'),
      'the initiator logged its AO policy applied before connect',
    );
  });

  t.test('the wire is TCP-AO: the AO counters of both containers, and every captured segment', async (tt) => {
    for (const name of [INITIATOR, TERMINATOR]) {
      const counters = containerAoCounters(engine, name);
      tt.ok((counters['TCPAOGood'] ?? 0) > 0, `${name}: TCPAOGood ${counters['TCPAOGood']}`);
      tt.equal(counters['TCPAOBad'], 0, `${name}: TCPAOBad`);
      tt.equal(counters['TCPAOKeyNotFound'], 0, `${name}: TCPAOKeyNotFound`);
    }
    const running = tcpdump;
    if (running !== undefined && running.exitCode === null) {
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGINT');
      await exited;
    }
    const segments = readCapture(capture);
    const unsigned = segments.filter((segment) => !segment.tsharkKinds.includes(TCP_OPTION_AO)).map((segment) => segment.frame);
    tt.ok(segments.length >= 4, `${segments.length} segments on port ${topology.wirePort} captured on the bridge and its veths`);
    tt.ok(segments.some((segment) => segment.syn), 'the capture holds the handshake (a SYN)');
    tt.same(unsigned, [], 'every captured segment carries the TCP-AO option (kind 29)');
  });

  t.test('no key byte in docker-compose logs, docker-compose config or docker inspect', async (tt) => {
    const encodings = keyEncodings(key);
    const logs = compose(['logs', '--no-color']);
    tt.ok(logs.stdout.includes(TERMINATOR) && logs.stdout.includes(INITIATOR), 'docker-compose logs has both services');
    tt.same(encodings.filter((encoding) => `${logs.stdout}${logs.stderr}`.includes(encoding)), [], 'docker-compose logs');
    const config = compose(['config']);
    tt.same(encodings.filter((encoding) => config.stdout.includes(encoding)), [], 'docker-compose config');
    const inspect = engine.docker(['inspect', TERMINATOR, INITIATOR]).stdout;
    tt.ok(inspect.includes('/run/secrets/tcpao_key'), 'the key is mounted as the compose secret');
    tt.same(encodings.filter((encoding) => inspect.includes(encoding)), [], 'docker inspect of both containers');
    const network = engine.docker(['network', 'inspect', networkId]).stdout;
    tt.same(encodings.filter((encoding) => network.includes(encoding)), [], 'docker network inspect');
  });

  t.test('docker-compose down removes the containers and the network; nothing is left behind', async (tt) => {
    const since = Math.floor(upStartedMs / 1000);
    const started = Date.now();
    const down = compose(['down']);
    tt.comment(`docker-compose down took ${seconds(Date.now() - started)}`);
    tt.equal(down.status, 0, 'docker-compose down exits 0');
    tt.same(projectContainers(), [], 'no container of the project is left');
    tt.same(projectNetworks(), [], 'no network of the project is left');
    for (const name of [TERMINATOR, INITIATOR]) {
      tt.not(engine.docker(['inspect', name], { allowFailure: true }).status, 0, `${name} is gone`);
    }
    tt.same(readdirSync('/sys/class/net').sort(), interfacesBefore, "the bridge and both veths are gone from the lab's interfaces");
    tt.notOk(readdirSync('/sys/class/net').includes(`br-${networkId.slice(0, 12)}`), `br-${networkId.slice(0, 12)} is gone`);
    const events = engine.docker([
      'events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1),
      '--filter', 'type=container', '--filter', 'event=die', '--filter', PROJECT_LABEL,
      '--format', '{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}',
    ]).stdout.trim().split('\n').filter((line) => line.length > 0);
    tt.same(events.map((line) => line.split(' ')[0]).sort(), [INITIATOR, TERMINATOR].sort(), `each container died once: ${events.join(', ')}`);
    tt.same(
      events.filter((line) => Number(line.split(' ')[1]) === SIGKILL_EXIT),
      [],
      `no container needed Docker's SIGKILL after the ${STOP_GRACE_SECS} s stop_grace_period`,
    );
  });
}
