/**
 * The two built images in a real engine (scripts/docker-engine): each starts
 * its own binaries, and on this host, whose kernel has no TCP-AO, the
 * terminator's own entrypoint refuses to start: exit 1, doctor's remedy line,
 * and neither the app nor the sidecar ever started. Builds the images with
 * scripts/build-images when the engine lacks them.
 */
import t, { type Test } from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NO_TCP_AO_FINDING } from '../../src/doctor/host-checks.js';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DOCKER = '/usr/bin/docker';
const BUILD_TIMEOUT_MS = 1_800_000;

interface ImageEntry {
  readonly name: string;
  readonly tag: string;
  readonly role: 'initiator' | 'terminator';
}

const imagesJson = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'images', 'images.json'), 'utf8')) as {
  registry: string;
  images: ImageEntry[];
};
const packageVersion = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const refOf = (image: ImageEntry): string => `${imagesJson.registry}/${image.name}:${image.tag}`;
const byRole = (role: ImageEntry['role']): ImageEntry => {
  const image = imagesJson.images.find((entry) => entry.role === role);
  if (image === undefined) throw new Error(`images.json has no ${role} image`);
  return image;
};

function script(name: string, args: readonly string[], timeout = 300_000): SpawnSyncReturns<string> {
  return spawnSync(path.join(ROOT, 'scripts', name), args, { cwd: ROOT, encoding: 'utf8', timeout });
}

/** The engine's DOCKER_HOST, or why it cannot start here. */
function startEngine(): { dockerHost: string } | { reason: string } {
  const start = script('docker-engine', ['start']);
  if (start.status !== 0) return { reason: `the Docker engine cannot start here: ${start.stderr.trim().split('\n').pop() ?? 'no output'}` };
  const env = script('docker-engine', ['env']);
  const match = /^export DOCKER_HOST=(\S+)$/m.exec(env.stdout);
  if (match === null) throw new Error(`scripts/docker-engine env printed no DOCKER_HOST: ${env.stdout}`);
  return { dockerHost: match[1] as string };
}

const engine = startEngine();
if ('reason' in engine) {
  t.plan(0, engine.reason);
} else {
  const docker = (args: readonly string[], timeout = 120_000): SpawnSyncReturns<string> =>
    spawnSync(DOCKER, args, { encoding: 'utf8', timeout, env: { ...process.env, DOCKER_HOST: engine.dockerHost } });

  t.setTimeout(BUILD_TIMEOUT_MS + 300_000);

  t.before(() => {
    const missing = imagesJson.images.filter((image) => docker(['image', 'inspect', refOf(image)]).status !== 0);
    if (missing.length === 0) return;
    const build = spawnSync(path.join(ROOT, 'scripts', 'build-images'), [], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT_MS,
      env: { ...process.env, DOCKER_HOST: engine.dockerHost },
    });
    if (build.status !== 0) throw new Error(`scripts/build-images failed: ${build.stderr.trim()}`);
  });

  for (const image of imagesJson.images) {
    t.test(`${image.name}: tcpao-proxy runs from the image`, async (t: Test) => {
      const run = docker(['run', '--rm', '--network', 'none', '--entrypoint', 'tcpao-proxy', refOf(image), 'version']);
      t.equal(run.status, 0, `exit 0 (${run.stderr.trim()})`);
      t.match(run.stdout, new RegExp(`^tcpao-proxy ${packageVersion.replace(/\./g, '\\.')} \\(node v20\\.20\\.2, linux x64\\)$`, 'm'));
    });
  }

  t.test('the initiator image runs gobgpd', async (t) => {
    const run = docker(['run', '--rm', '--network', 'none', '--entrypoint', 'gobgpd', refOf(byRole('initiator')), '--version']);
    t.equal(run.status, 0, `exit 0 (${run.stderr.trim()})`);
    t.match(run.stdout, /^gobgpd version \d+\.\d+\.\d+/m);
  });

  t.test('the terminator image runs gobmp', async (t) => {
    const run = docker(['run', '--rm', '--network', 'none', '--entrypoint', 'gobmp', refOf(byRole('terminator')), '--help']);
    t.match(`${run.stdout}${run.stderr}`, /-source-port\b/, 'gobmp prints its flags, among them --source-port');
  });

  t.test('without TCP-AO in the kernel the terminator refuses to start: exit 1, the remedy, nothing started', async (t) => {
    const key = randomBytes(32).toString('hex');
    const name = `tcpao-images-test-${process.pid}`;
    t.teardown(() => {
      docker(['rm', '--force', name]);
    });
    const run = docker(['run', '--name', name, '--network', 'none', '-e', `TCPAO_KEY=${key}`, '-e', 'PEER_IP=192.0.2.1', refOf(byRole('terminator'))]);
    t.equal(run.status, 1, 'the container exits 1');
    const logs = docker(['logs', name]);
    const output = `${logs.stdout}${logs.stderr}`;
    t.match(output, new RegExp(`FAIL\\s+TCP-AO runtime probe\\s+${NO_TCP_AO_FINDING}`), "doctor's failing probe");
    t.match(output, /^\s*remedy: boot a Linux .* kernel built with CONFIG_TCP_AO=y/m, "doctor's remedy line");
    const records = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string; module?: string });
    t.ok(records.some((r) => r.module === 'entrypoint' && r.level === 50 && /refusing to start/.test(r.msg)), 'the entrypoint logs that it refuses to start');
    t.notOk(records.some((r) => r.module === 'supervise'), 'supervise.sh never ran: neither gobmp nor the sidecar started, so nothing listened');
    t.notOk(records.some((r) => /listening/i.test(r.msg)), 'no listener logged');
    t.notOk(output.includes(key), 'the key is not in the log');
    const state = docker(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', name]);
    t.equal(state.stdout.trim(), '1 false', 'the engine recorded exit 1');
  });
}
