/**
 * The container's processes, run as a container runs them: the role
 * entrypoint as PID 1 of its own pid namespace, then tini, supervise.sh, the
 * app and a stand-in sidecar. Covers the key's isolation from the app, the
 * two users, SIGHUP through PID 1 and the drain chain's startup check.
 * test/e2e/entrypoint-isolation.test.ts repeats the isolation checks with the
 * real sidecar in the kernel lab.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import TOML from '@iarna/toml';

import {
  APP_PROBE_JS,
  APP_UID,
  assertNoProcessHoldsKey,
  assertProbeFoundNoKey,
  ENTRYPOINT_DIR,
  FAKE_PROC_JS,
  ROOT,
  SIDECAR_UID,
  baseEnv,
  capEff,
  comm,
  isSupervisor,
  jsonLines,
  makeDirs,
  namespaceProcesses,
  nsPid,
  readProc,
  readState,
  startInPidNamespace,
  uids,
  waitFor,
  type Dirs,
  type NamespaceRun,
  type Probe,
} from './entrypoint-run.js';

const KEY = 'isolation-test-key-3c9d7e21a0b4';
const KEY_SHA256 = createHash('sha256').update(KEY).digest('hex');
const TERMINATOR = path.join(ENTRYPOINT_DIR, 'terminator.sh');

interface ProcState {
  readonly pid: number;
  readonly uid: number;
  readonly hasKeyEnv: boolean;
  readonly keySha256?: string;
}

const hostSkip = process.getuid?.() !== 0 ? 'needs root (pid namespaces, switching users)' : false;

function probeEnv(dirs: Dirs, extra: Record<string, string>): Record<string, string> {
  return {
    ...baseEnv(dirs),
    PEER_IP: '10.10.10.1',
    APP_CMD: `exec node ${APP_PROBE_JS} ${dirs.stateDir} ${dirs.stagedKeyFile}`,
    ...extra,
  };
}

async function upAndProbed(run: NamespaceRun, dirs: Dirs): Promise<{ sidecar: ProcState; probe: Probe; supervisorPid: number }> {
  const sidecar = await waitFor('the sidecar', () => readState<ProcState>(dirs, 'sidecar.json'));
  await waitFor('the app', () => readState(dirs, 'app.json'));
  writeFileSync(path.join(dirs.stateDir, 'probe.go'), '');
  const probe = await waitFor('the probe', () => readState<Probe>(dirs, 'probe.json'));
  const supervisor = namespaceProcesses(run.init() as number).find(isSupervisor);
  return { sidecar, probe, supervisorPid: nsPid(supervisor as number) };
}

t.test('TCPAO_KEY: from inside the app no route yields the key, and no process keeps it in its environment', { skip: hostSkip }, async (t) => {
  const dirs = makeDirs(t);
  const run = startInPidNamespace(t, TERMINATOR, probeEnv(dirs, { TCPAO_KEY: KEY }));
  const { sidecar, probe, supervisorPid } = await upAndProbed(run, dirs);
  t.equal(sidecar.keySha256, KEY_SHA256, 'the sidecar reads the very key from its key_source file');
  t.equal(sidecar.hasKeyEnv, false, 'the sidecar has no TCPAO_KEY in its environment');
  const config = TOML.parse(readFileSync(dirs.configPath, 'utf8')) as { ao_policy: { key_source: string }[] };
  t.equal(config.ao_policy[0]?.key_source, `file:${dirs.stagedKeyFile}`, 'the config points at the staged key file');
  assertProbeFoundNoKey(t, KEY, probe, sidecar.pid, supervisorPid);
  assertNoProcessHoldsKey(t, KEY, run);
  t.notOk(run.stdout.includes(KEY) || run.stderr.includes(KEY), 'no key in the output');
});

t.test('the users: app and sidecar run as their own uids, with no capability; the supervisor and PID 1 stay root', { skip: hostSkip }, async (t) => {
  const dirs = makeDirs(t);
  const run = startInPidNamespace(t, TERMINATOR, {
    ...baseEnv(dirs),
    PEER_IP: '10.10.10.1',
    TCPAO_KEY: KEY,
    APP_CMD: `exec node ${FAKE_PROC_JS} app ${dirs.stateDir}`,
  });
  await waitFor('the sidecar', () => readState(dirs, 'sidecar.json'));
  await waitFor('the app', () => readState(dirs, 'app.json'));
  const byComm = new Map<string, number[]>();
  for (const pid of namespaceProcesses(run.init() as number)) {
    const args = readProc(pid, 'cmdline')?.toString().split('\0') ?? [];
    const role = isSupervisor(pid) ? 'supervisor' : args.includes('sidecar') ? 'sidecar' : args.includes('app') ? 'app' : comm(pid);
    byComm.set(role, [...(byComm.get(role) ?? []), pid]);
  }
  const only = (role: string): number => {
    const pids = byComm.get(role) ?? [];
    t.equal(pids.length, 1, `one ${role} process`);
    return pids[0] as number;
  };
  t.equal(comm(run.init() as number), 'tini', 'PID 1 is tini, exec\'d by the entrypoint');
  t.same(uids(run.init() as number), [0, 0, 0, 0], 'tini is root');
  t.same(uids(only('supervisor')), [0, 0, 0, 0], 'the supervisor is root');
  t.same(uids(only('app')), [APP_UID, APP_UID, APP_UID, APP_UID], 'the app runs as TCPAO_APP_USER (real, effective, saved, fs)');
  t.same(uids(only('sidecar')), [SIDECAR_UID, SIDECAR_UID, SIDECAR_UID, SIDECAR_UID], 'the sidecar runs as TCPAO_SIDECAR_USER');
  for (const role of ['app', 'sidecar']) {
    t.equal(capEff(only(role)), '0000000000000000', `the ${role} has no capability`);
    t.match(readProc(only(role), 'status')?.toString(), /^NoNewPrivs:\s+1$/m, `the ${role} cannot gain privileges`);
  }
});

t.test('TCPAO_KEY_FILE: the mounted key is staged for the sidecar; the app can open neither copy', { skip: hostSkip }, async (t) => {
  const dirs = makeDirs(t);
  const keyDir = mkdtempSync(path.join(tmpdir(), 'tcpao-key-'));
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }));
  const keyFile = path.join(keyDir, 'tcpao_key');
  writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
  const run = startInPidNamespace(t, TERMINATOR, probeEnv(dirs, { TCPAO_KEY_FILE: keyFile }));
  const { sidecar, probe, supervisorPid } = await upAndProbed(run, dirs);
  t.equal(sidecar.keySha256, KEY_SHA256, 'the staged copy holds the same key');
  assertProbeFoundNoKey(t, KEY, probe, sidecar.pid, supervisorPid);
  assertNoProcessHoldsKey(t, KEY, run);
});

t.test('a key file the app user could read is refused before anything starts', { skip: hostSkip }, async (t) => {
  const dirs = makeDirs(t);
  // A world-readable file in a traversable directory, as many secret mounts are.
  const keyDir = mkdtempSync(path.join(tmpdir(), 'tcpao-key-'));
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }));
  chmodSync(keyDir, 0o755);
  const keyFile = path.join(keyDir, 'tcpao_key');
  writeFileSync(keyFile, KEY, { mode: 0o644 });
  const run = startInPidNamespace(t, TERMINATOR, probeEnv(dirs, { TCPAO_KEY_FILE: keyFile }));
  const { code } = await run.exited;
  t.equal(code, 2, 'exit 2');
  const refusal = jsonLines(run.stderr).find((line) => line.level === 50);
  t.equal(refusal?.['code'], 'ERR_TCPAO_KEY_SOURCE');
  t.match(refusal?.['msg'], /readable by the app's user/);
  t.equal(readState(dirs, 'app.json'), undefined, 'the app never started');
});

t.test('SIGHUP to PID 1 reaches the sidecar as a reload, not the app, and the pair keeps running', { skip: hostSkip }, async (t) => {
  const dirs = makeDirs(t);
  const run = startInPidNamespace(t, TERMINATOR, {
    ...baseEnv(dirs),
    PEER_IP: '10.10.10.1',
    TCPAO_KEY: KEY,
    APP_CMD: `exec node ${FAKE_PROC_JS} app ${dirs.stateDir}`,
  });
  const sidecar = await waitFor('the sidecar', () => readState<ProcState>(dirs, 'sidecar.json'));
  await waitFor('the app', () => readState(dirs, 'app.json'));
  const init = run.init() as number;
  t.equal(comm(init), 'tini', 'the signal goes to PID 1, tini');

  process.kill(init, 'SIGHUP');
  t.same(await waitFor('the first reload', () => readState(dirs, 'sidecar.hup')), { count: 1 }, 'the sidecar got SIGHUP');
  process.kill(init, 'SIGHUP');
  t.same(await waitFor('the second reload', () => readState<{ count: number }>(dirs, 'sidecar.hup')?.count === 2 ? { count: 2 } : undefined), { count: 2 }, 'and again: the supervisor survived the first');
  // The supervisor logs after its kill, so the line may come after the sidecar saw the signal.
  const forwardedLines = () => jsonLines(run.stderr).filter((line) => line.msg === 'received SIGHUP; asked the sidecar to reload (the app is not signalled)');
  const forwarded = await waitFor('the second reload line', () => (forwardedLines().length >= 2 ? forwardedLines() : undefined));
  t.equal(forwarded.length, 2, 'the supervisor logs each reload');
  t.equal(forwarded[0]?.['sidecar_pid'], sidecar.pid);
  t.equal(readState(dirs, 'app.hup'), undefined, 'the app got no SIGHUP');
  t.equal(run.child.exitCode, null, 'the container is still running');

  process.kill(init, 'SIGTERM');
  const { code } = await run.exited;
  t.equal(code, 143, 'SIGTERM then stops it: exit 143');
  t.same(readState(dirs, 'app.signal'), { signal: 'SIGTERM' });
  t.same(readState(dirs, 'sidecar.signal'), { signal: 'SIGTERM' });
  t.equal(readState(dirs, 'app.hup'), undefined, 'the app never got SIGHUP');
});

t.test('the drain chain: the default grace is 12 s, and a drain that would outlast the grace is refused', { skip: hostSkip }, async (t) => {
  const dirs = makeDirs(t);
  const run = startInPidNamespace(t, TERMINATOR, {
    ...baseEnv(dirs),
    PEER_IP: '10.10.10.1',
    TCPAO_KEY: KEY,
    APP_CMD: `exec node ${FAKE_PROC_JS} app ${dirs.stateDir}`,
  });
  await waitFor('the sidecar', () => readState(dirs, 'sidecar.json'));
  const started = jsonLines(run.stderr).find((line) => line.msg === 'started app and sidecar');
  t.equal(started?.['stop_grace_secs'], 12, 'SUPERVISE_STOP_GRACE_SECS defaults to 12');
  const checked = jsonLines(run.stderr).find((line) => line.msg === 'drain chain checked');
  t.same([checked?.['shutdown_timeout_secs'], checked?.['stop_grace_secs']], [8, 12], 'the templates drain for 8 s');
  process.kill(run.init() as number, 'SIGTERM');
  await run.exited;

  const templates = mkdtempSync(path.join(tmpdir(), 'tcpao-templates-'));
  t.teardown(() => rmSync(templates, { recursive: true, force: true }));
  const shipped = readFileSync(path.join(ROOT, 'deploy', 'config', 'terminator.toml.tmpl'), 'utf8');
  writeFileSync(path.join(templates, 'terminator.toml.tmpl'), shipped.replace(/^shutdown_timeout_secs = 8\n/m, ''));
  const cases: [string, Record<string, string>, RegExp][] = [
    ['grace 9 s against a drain of 8 s + 1 s', { SUPERVISE_STOP_GRACE_SECS: '9' }, /shutdown_timeout_secs \(8 s\) \+ 1 s is not below SUPERVISE_STOP_GRACE_SECS \(9 s\)/],
    ['a template without shutdown_timeout_secs', { TCPAO_TEMPLATE_DIR: templates }, /does not set \[global\] shutdown_timeout_secs/],
  ];
  for (const [label, env, message] of cases) {
    const refusedDirs = makeDirs(t);
    const refused = startInPidNamespace(t, TERMINATOR, {
      ...baseEnv(refusedDirs),
      PEER_IP: '10.10.10.1',
      TCPAO_KEY: KEY,
      APP_CMD: `exec node ${FAKE_PROC_JS} app ${refusedDirs.stateDir}`,
      ...env,
    });
    t.equal((await refused.exited).code, 2, `${label}: exit 2`);
    const line = jsonLines(refused.stderr).find((l) => l.level === 50);
    t.equal(line?.['code'], 'ERR_TCPAO_CONFIG_INVALID', `${label}: coded`);
    t.match(line?.['msg'], message, `${label}: says what to change`);
    t.equal(readState(refusedDirs, 'app.json'), undefined, `${label}: nothing started`);
  }
});

t.test('users and the runtime directory are checked before anything starts', { skip: hostSkip }, async (t) => {
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['the same user twice', { TCPAO_APP_USER: String(SIDECAR_UID) }, 'ERR_TCPAO_USAGE', /are the same uid/],
    ['root as the app', { TCPAO_APP_USER: 'root' }, 'ERR_TCPAO_USAGE', /must not be root/],
    ['an unknown user name', { TCPAO_SIDECAR_USER: 'no-such-user-here' }, 'ERR_TCPAO_USAGE', /TCPAO_SIDECAR_USER names no user/],
    ['a runtime directory on a disk', { TCPAO_RUNTIME_DIR: path.join(tmpdir(), `tcpao-run-${process.pid}`) }, 'ERR_TCPAO_USAGE', /not on a tmpfs/],
    ['a relative runtime directory', { TCPAO_RUNTIME_DIR: 'run/tcpao' }, 'ERR_TCPAO_USAGE', /must be an absolute path/],
  ];
  for (const [label, env, code, message] of cases) {
    const dirs = makeDirs(t);
    const run = startInPidNamespace(t, TERMINATOR, { ...probeEnv(dirs, { TCPAO_KEY: KEY }), ...env });
    t.equal((await run.exited).code, 2, `${label}: exit 2`);
    const line = jsonLines(run.stderr).find((l) => l.level === 50);
    t.equal(line?.['code'], code, `${label}: ${code}`);
    t.match(line?.['msg'], message, `${label}: names the problem`);
    t.notMatch(run.stderr, /\n\s+at /, `${label}: no stack trace`);
    t.equal(readState(dirs, 'app.json'), undefined, `${label}: nothing started`);
  }
});

t.test('an entrypoint that does not start as root is refused', { skip: hostSkip }, async (t) => {
  const dirs = makeDirs(t);
  const child = spawn(TERMINATOR, [], { env: probeEnv(dirs, { TCPAO_KEY: KEY }), uid: 65_534, gid: 65_534, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 2);
  const line = jsonLines(stderr).find((l) => l.level === 50);
  t.equal(line?.['code'], 'ERR_TCPAO_USAGE');
  t.match(line?.['msg'], /not root, so it cannot run the app and the sidecar as two separate users/);
});
