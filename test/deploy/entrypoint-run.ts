/**
 * Runs a role entrypoint the way a container does: as PID 1 of a fresh pid
 * namespace (unshare --pid --fork --mount-proc), so "every process of the
 * container" is every process of that namespace. Shared by the key-isolation
 * tests on the host (stand-in sidecar) and in the kernel lab (real sidecar).
 */
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { waitForValue } from '../helpers/wait.js';
import type { Attempt } from './fixtures/app-probe.js';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const ENTRYPOINT_DIR = path.join(ROOT, 'deploy', 'entrypoint');
export const FAKE_PROXY = path.join(ROOT, 'test', 'deploy', 'fixtures', 'fake-tcpao-proxy');
export const FAKE_PORT_GUARD = path.join(ROOT, 'test', 'deploy', 'fixtures', 'fake-port-guard');
export const FAKE_PROC_JS = path.join(__dirname, 'fixtures', 'fake-proc.js');
export const APP_PROBE_JS = path.join(__dirname, 'fixtures', 'app-probe.js');
/** Bare uids with no /etc/passwd entry: the entrypoint takes them as they are. */
export const APP_UID = 10_001;
export const SIDECAR_UID = 10_002;

export type JsonLine = Record<string, unknown>;

export interface Dirs {
  /** Where the stand-ins write their state: writable by both users. */
  readonly stateDir: string;
  readonly configPath: string;
  /** TCPAO_RUNTIME_DIR, on the /dev/shm tmpfs. */
  readonly runtimeDir: string;
  readonly stagedKeyFile: string;
}

export function makeDirs(t: Test): Dirs {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'tcpao-entrypoint-'));
  chmodSync(stateDir, 0o777);
  const shm = mkdtempSync('/dev/shm/tcpao-entrypoint-');
  chmodSync(shm, 0o755);
  t.teardown(() => {
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  });
  const runtimeDir = path.join(shm, 'run');
  return { stateDir, configPath: path.join(stateDir, 'etc', 'config.toml'), runtimeDir, stagedKeyFile: path.join(runtimeDir, 'key') };
}

/** The environment every run gets: stand-in paths, the two test users, the directories. */
export function baseEnv(dirs: Dirs): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TCPAO_PROXY_BIN: FAKE_PROXY,
    TCPAO_PORT_GUARD: FAKE_PORT_GUARD,
    TCPAO_TEMPLATE_DIR: path.join(ROOT, 'deploy', 'config'),
    TCPAO_CONFIG_PATH: dirs.configPath,
    TCPAO_RUNTIME_DIR: dirs.runtimeDir,
    TCPAO_APP_USER: String(APP_UID),
    TCPAO_SIDECAR_USER: String(SIDECAR_UID),
    FAKE_STATE_DIR: dirs.stateDir,
    FAKE_PROC_JS,
  };
}

export function jsonLines(text: string): JsonLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as JsonLine);
}

export function waitFor<T>(what: string, probe: () => T | undefined): Promise<T> {
  // Generous: under emulation (the kernel lab without KVM) node takes seconds to start.
  return waitForValue(what, probe, 300_000);
}

export function readState<T>(dirs: Dirs, name: string): T | undefined {
  const file = path.join(dirs.stateDir, name);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

export interface NamespaceRun {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The host pid of the namespace's PID 1 (the entrypoint, then tini). */
  init(): number | undefined;
}

/** Starts `entrypoint` as PID 1 of a new pid namespace; teardown kills the whole namespace. */
export function startInPidNamespace(t: Test, entrypoint: string, env: Record<string, string>): NamespaceRun {
  // tap's processinfo adds its --import to NODE_OPTIONS of every child; under the
  // container's users that hook cannot write its record into .tap/ (EACCES), and
  // the real sidecar and doctor fail on it. `env -u` execs, so the pid stays unshare's.
  const child = spawn('env', ['-u', 'NODE_OPTIONS', 'unshare', '--pid', '--fork', '--mount-proc', '--kill-child', entrypoint], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: NamespaceRun = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    init() {
      // unshare's only child; found by ppid, since /proc/PID/task/TID/children
      // needs CONFIG_PROC_CHILDREN, which the kernel lab's small kernel lacks.
      return childrenOf(child.pid as number)[0];
    },
  };
  child.stdout?.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const init = run.init();
      // SIGKILL to a namespace's init kills every process in it.
      if (init !== undefined) process.kill(init, 'SIGKILL');
      child.kill('SIGKILL');
      await run.exited;
    }
  });
  return run;
}

export function readProc(pid: number, file: string): Buffer | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`);
  } catch {
    return undefined;
  }
}

/** Pids whose parent is `pid`, from the ppid field of /proc/PID/stat. */
export function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    const stat = readProc(Number(entry), 'stat')?.toString();
    if (stat === undefined) continue;
    // comm may hold spaces and parentheses: the fields after it start past the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) found.push(Number(entry));
  }
  return found;
}

/** Host pids of every process in the pid namespace whose init is `initPid`. */
export function namespaceProcesses(initPid: number): number[] {
  const namespace = readlinkSync(`/proc/${initPid}/ns/pid`);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) === namespace) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** The Uid: line of /proc/PID/status (real, effective, saved, fs). */
export function uids(pid: number): number[] {
  const status = readProc(pid, 'status')?.toString() ?? '';
  const line = /^Uid:\s+(.*)$/m.exec(status);
  return line === null ? [] : (line[1] as string).split(/\s+/).map(Number);
}

export function capEff(pid: number): string | undefined {
  return /^CapEff:\s+(\S+)$/m.exec(readProc(pid, 'status')?.toString() ?? '')?.[1];
}

/** The pid a host process has inside its own (innermost) pid namespace. */
export function nsPid(hostPid: number): number {
  const line = /^NSpid:\s+(.*)$/m.exec(readProc(hostPid, 'status')?.toString() ?? '');
  return Number(line?.[1]?.split(/\s+/).at(-1));
}

/** The process's command name. */
export function comm(pid: number): string {
  return readProc(pid, 'comm')?.toString().trim() ?? '';
}

/** supervise.sh runs as `bash .../supervise.sh ...` (tini's own argv names it too, later). */
export function isSupervisor(pid: number): boolean {
  const args = readProc(pid, 'cmdline')?.toString().split('\0') ?? [];
  return comm(pid) === 'bash' && (args[1] ?? '').endsWith('/supervise.sh');
}

/** What fixtures/app-probe.js writes to probe.json. */
export interface Probe {
  readonly pid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly attempts: Attempt[];
}

/** What the app got through every route, decoded; none of it may hold the key. */
export function assertProbeFoundNoKey(t: Test, key: string, probe: Probe, sidecarPid: number, supervisorPid: number): void {
  t.equal(probe.uid, APP_UID, 'the probe ran as the app user');
  t.equal(probe.ppid, supervisorPid, "the app's parent is the supervisor");
  for (const attempt of probe.attempts) {
    if (attempt.data === undefined) continue;
    t.notOk(Buffer.from(attempt.data, 'base64').includes(key), `no key through ${attempt.route}`);
  }
  const byRoute = new Map(probe.attempts.map((attempt) => [attempt.route, attempt]));
  const refused = (route: string): void => {
    const attempt = byRoute.get(route);
    t.ok(attempt !== undefined && !attempt.ok && ['EACCES', 'EPERM'].includes(attempt.code ?? ''), `${route} is refused (${attempt?.code})`);
  };
  t.equal(byRoute.get('/proc/self/environ')?.ok, true, 'the app reads its own environment');
  t.notMatch(Buffer.from(byRoute.get('/proc/self/environ')?.data ?? '', 'base64').toString(), /TCPAO_KEY/, 'which names no key variable');
  refused(`/proc/${supervisorPid}/environ`);
  refused('/proc/1/environ');
  refused(`/proc/${sidecarPid}/environ`);
  refused(`/proc/${sidecarPid}/mem`);
  refused(`/proc/${sidecarPid}/maps`);
  refused(`kill(${sidecarPid}, 0)`);
  refused(probe.attempts.at(-2)?.route as string);
  refused(probe.attempts.at(-1)?.route as string);
}

/** Every process of the namespace, read as root: no environ and no cmdline holds the key. */
export function assertNoProcessHoldsKey(t: Test, key: string, run: NamespaceRun): void {
  const pids = namespaceProcesses(run.init() as number);
  t.ok(pids.length >= 4, `tini, the supervisor, the app and the sidecar are in the namespace (${pids.length} processes)`);
  for (const pid of pids) {
    for (const file of ['environ', 'cmdline']) {
      const content = readProc(pid, file);
      if (content === undefined) continue;
      t.notOk(content.includes(key), `no key in /proc/${pid}/${file} (${comm(pid)})`);
      t.notOk(content.includes('TCPAO_KEY='), `no TCPAO_KEY variable in /proc/${pid}/${file}`);
    }
  }
}

