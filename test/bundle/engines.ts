import type { Test } from 'tap';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * Real container engines and a real registry for the air-gap tests: each
 * dockerd has its own data root, exec root and socket under /tmp, so an
 * "empty engine" really starts with an empty image store; the registry is
 * Debian's docker-registry on a loopback port the kernel picks.
 */

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command with an argument array; never rejects, the caller checks the code. */
export function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, [...args], { env, cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127;
      resolve({ code, stdout, stderr: err !== null && code === 127 ? `${stderr}${err.message}` : stderr });
    });
  });
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { encoding: 'utf8' }).status === 0;
}

/** Why real engines cannot run on this host, or null when they can. */
export function engineSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'dockerd needs root and this test runs as another user';
  for (const tool of ['dockerd', 'containerd', 'runc', 'docker', 'docker-registry']) {
    if (!onPath(tool)) return `${tool} is not installed (Debian packages docker.io and docker-registry)`;
  }
  return null;
}

export interface Engine {
  readonly label: string;
  /** unix:///... socket of this engine. */
  readonly host: string;
  /** process.env with DOCKER_HOST pointing at this engine. */
  readonly env: NodeJS.ProcessEnv;
  docker(args: readonly string[]): Promise<RunResult>;
  /** Every image ID in the store, dangling ones included, each once. */
  imageIds(): Promise<string[]>;
}

async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  // dockerd stops its containerd and unmounts its data root before it exits.
  const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
  }
}

function spawnLogged(command: string, args: readonly string[], logPath: string): { child: ChildProcess; exited: Promise<void> } {
  const log = openSync(logPath, 'a');
  const child = spawn(command, [...args], { stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited };
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

function dockerFor(env: NodeJS.ProcessEnv): (args: readonly string[]) => Promise<RunResult> {
  return (args) => run('docker', args, env);
}

/** An engine someone else runs (the one `make images` built into); never stopped here. */
export function existingEngine(label: string, host: string): Engine {
  const env = { ...process.env, DOCKER_HOST: host };
  const docker = dockerFor(env);
  return { label, host, env, docker, imageIds: () => listImageIds(docker) };
}

async function listImageIds(docker: (args: readonly string[]) => Promise<RunResult>): Promise<string[]> {
  const result = await docker(['image', 'ls', '--all', '--no-trunc', '--quiet']);
  if (result.code !== 0) throw new Error(`docker image ls failed: ${result.stderr.trim()}`);
  // One line per tag: an image with a second tag (the registry ref) appears twice.
  return [...new Set(result.stdout.split('\n').filter((l) => l.length > 0))];
}

/**
 * Start a private dockerd with an empty store and wait until it answers.
 * Torn down (stopped, then its directory removed) when t ends.
 */
export async function startEngine(t: Test, label: string): Promise<Engine> {
  // Short path: a unix socket path must fit in 108 bytes.
  const dir = mkdtempSync(`/tmp/tcpao-eng-${label}-`);
  const socket = join(dir, 'docker.sock');
  const logPath = join(dir, 'dockerd.log');
  writeFileSync(join(dir, 'daemon.json'), '{}\n');
  mkdirSync(join(dir, 'data'));
  const { child, exited } = spawnLogged(
    'dockerd',
    [
      '--config-file', join(dir, 'daemon.json'),
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'dockerd.pid'),
      '-H', `unix://${socket}`,
      // No networking of its own: the containers here run with --network none.
      '--iptables=false',
      '--bridge=none',
    ],
    logPath,
  );
  t.teardown(async () => {
    await stopProcess(child, exited);
    rmSync(dir, { recursive: true, force: true });
  });
  const host = `unix://${socket}`;
  const env = { ...process.env, DOCKER_HOST: host };
  const docker = dockerFor(env);
  // A loaded two-core host can take a while to bring dockerd and containerd up.
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd (${label}) exited while starting: ${tail(logPath)}`);
    if ((await docker(['version', '--format', '{{.Server.Version}}'])).code === 0) {
      return { label, host, env, docker, imageIds: () => listImageIds(docker) };
    }
    await sleep(200);
  }
  throw new Error(`dockerd (${label}) did not answer on ${socket}: ${tail(logPath)}`);
}

export interface Registry {
  /** 127.0.0.1:PORT */
  readonly address: string;
}

/** Debian's docker-registry on 127.0.0.1, a port the kernel picks, storage in a temp dir. */
export async function startRegistry(t: Test): Promise<Registry> {
  const dir = mkdtempSync('/tmp/tcpao-registry-');
  const config = join(dir, 'config.yml');
  const logPath = join(dir, 'registry.log');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      'http:',
      '  addr: 127.0.0.1:0',
      '',
    ].join('\n'),
  );
  const { child, exited } = spawnLogged('docker-registry', ['serve', config], logPath);
  t.teardown(async () => {
    await stopProcess(child, exited);
    rmSync(dir, { recursive: true, force: true });
  });
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`docker-registry exited while starting: ${tail(logPath)}`);
    const listening = /listening on (127\.0\.0\.1:[0-9]+)/.exec(readFileSync(logPath, 'utf8'));
    if (listening !== null) return { address: listening[1] as string };
    await sleep(100);
  }
  throw new Error(`docker-registry did not start listening: ${tail(logPath)}`);
}
