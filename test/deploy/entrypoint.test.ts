/**
 * Runs the real role entrypoints and supervise.sh on the host, with a fake
 * tcpao-proxy (doctor + sidecar) and a fake app, both fake-proc.js, as the
 * two bare uids of entrypoint-run.ts. entrypoint-isolation.test.ts runs them
 * in a pid namespace for the key-isolation checks.
 */
import t, { type Test } from 'tap';
import TOML from '@iarna/toml';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { APP_UID, ENTRYPOINT_DIR, FAKE_PORT_GUARD, FAKE_PROC_JS, FAKE_PROXY, ROOT, SIDECAR_UID, waitFor } from './entrypoint-run.js';

const KEY = 'entrypoint-test-key-5f2b8c1d9e7a';
const KEY_SHA256 = createHash('sha256').update(KEY).digest('hex');

interface ProcState {
  readonly pid: number;
  readonly argv: string[];
  readonly uid: number;
  readonly hasKeyEnv: boolean;
  readonly hasKeyFileEnv: boolean;
  readonly keySha256?: string;
}

interface Run {
  readonly child: ChildProcess;
  readonly stateDir: string;
  readonly configPath: string;
  readonly stagedKeyFile: string;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readState(run: Run, name: string): ProcState | undefined {
  const file = path.join(run.stateDir, `${name}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ProcState) : undefined;
}

function signalFile(run: Run, name: string): string | undefined {
  const file = path.join(run.stateDir, `${name}.signal`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { signal: string }).signal : undefined;
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Starts a command with the fake proxy and app wired in; teardown kills whatever is left. */
function start(t: Test, command: string, args: string[], env: Record<string, string>): Run {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'tcpao-entrypoint-'));
  // The app and the sidecar run as two other users; both write their state here.
  chmodSync(stateDir, 0o777);
  const shm = mkdtempSync('/dev/shm/tcpao-entrypoint-');
  chmodSync(shm, 0o755);
  const runtimeDir = path.join(shm, 'run');
  const configPath = path.join(stateDir, 'etc', 'config.toml');
  const child = spawn(command, args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      TCPAO_PROXY_BIN: FAKE_PROXY,
      TCPAO_PORT_GUARD: FAKE_PORT_GUARD,
      TCPAO_TEMPLATE_DIR: path.join(ROOT, 'deploy', 'config'),
      TCPAO_CONFIG_PATH: configPath,
      TCPAO_RUNTIME_DIR: runtimeDir,
      TCPAO_APP_USER: String(APP_UID),
      TCPAO_SIDECAR_USER: String(SIDECAR_UID),
      FAKE_STATE_DIR: stateDir,
      FAKE_PROC_JS,
      APP_CMD: `exec node ${FAKE_PROC_JS} app ${stateDir}`,
      SUPERVISE_STOP_GRACE_SECS: '10',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = {
    child,
    stateDir,
    configPath,
    stagedKeyFile: path.join(runtimeDir, 'key'),
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout?.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  t.teardown(async () => {
    for (const name of ['app', 'sidecar']) {
      const state = readState(run, name);
      if (state !== undefined && alive(state.pid)) process.kill(state.pid, 'SIGKILL');
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await run.exited;
    }
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  });
  return run;
}

function startRole(t: Test, role: 'initiator' | 'terminator', env: Record<string, string>): Run {
  return start(t, path.join(ENTRYPOINT_DIR, `${role}.sh`), [], env);
}

const INITIATOR_ENV = { TCPAO_KEY: KEY, REMOTE_AO: '10.10.10.2:1790' };
const TERMINATOR_ENV = { TCPAO_KEY: KEY, PEER_IP: '10.10.10.1' };

async function bothUp(run: Run): Promise<{ app: ProcState; sidecar: ProcState }> {
  const app = await waitFor('the app', () => readState(run, 'app'));
  const sidecar = await waitFor('the sidecar', () => readState(run, 'sidecar'));
  return { app, sidecar };
}

function assertNoKey(t: Test, run: Run): void {
  t.notMatch(run.stdout, KEY, 'no key on stdout');
  t.notMatch(run.stderr, KEY, 'no key on stderr');
}

t.test('initiator: renders, runs doctor, starts app then sidecar; the key reaches the sidecar only, through its file', async (t) => {
  const run = startRole(t, 'initiator', INITIATOR_ENV);
  const { app, sidecar } = await bothUp(run);

  t.same(sidecar.argv, ['--mode', 'initiator', '--config', run.configPath]);
  t.equal(sidecar.hasKeyEnv, false, 'the sidecar does not inherit TCPAO_KEY');
  t.equal(sidecar.keySha256, KEY_SHA256, 'it reads the key from the staged file');
  t.equal(app.hasKeyEnv, false, 'the app does not see TCPAO_KEY');
  t.same([app.uid, sidecar.uid], [APP_UID, SIDECAR_UID], 'each runs as its own user');
  t.equal(readFileSync(path.join(run.stateDir, 'doctor.args'), 'utf8').trim(), `doctor --config ${run.configPath}`);

  const config = TOML.parse(readFileSync(run.configPath, 'utf8')) as Record<string, any>;
  t.equal(config.initiator.remote_ao, '10.10.10.2:1790');
  t.equal(config.ao_policy[0].key_source, `file:${run.stagedKeyFile}`);
  t.equal(config.global.shutdown_timeout_secs, 8, 'the drain ends before the supervisor grace');
  t.notMatch(readFileSync(run.configPath, 'utf8'), KEY, 'no key in the rendered config');

  for (const pid of [run.child.pid as number, app.pid, sidecar.pid]) {
    t.notMatch(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), KEY, `no key in /proc/${pid}/cmdline`);
  }
  run.child.kill('SIGTERM');
  await run.exited;
  assertNoKey(t, run);
});

t.test('sidecar exits: the app is stopped and the entrypoint exits non-zero', async (t) => {
  const run = startRole(t, 'initiator', INITIATOR_ENV);
  const { app, sidecar } = await bothUp(run);
  process.kill(sidecar.pid, 'SIGKILL');
  const { code } = await run.exited;
  t.not(code, 0, 'non-zero exit');
  t.equal(code, 137, "the sidecar's status (killed by SIGKILL) is passed on");
  t.equal(signalFile(run, 'app'), 'SIGTERM', 'the app was sent SIGTERM');
  t.equal(alive(app.pid), false, 'the app is gone');
  const events = jsonLines(run.stderr);
  t.ok(events.some((e) => e.module === 'supervise' && e.process === 'sidecar' && e.status === 137), 'the supervisor logs which process exited');
  assertNoKey(t, run);
});

t.test('app exits: the sidecar is stopped and the entrypoint exits non-zero', async (t) => {
  const run = startRole(t, 'terminator', TERMINATOR_ENV);
  const { app, sidecar } = await bothUp(run);
  t.same(sidecar.argv, ['--mode', 'terminator', '--config', run.configPath]);
  process.kill(app.pid, 'SIGKILL');
  const { code } = await run.exited;
  t.equal(code, 137);
  t.equal(signalFile(run, 'sidecar'), 'SIGTERM', 'the sidecar was sent SIGTERM');
  t.equal(alive(sidecar.pid), false, 'the sidecar is gone');
  assertNoKey(t, run);
});

t.test('an app that exits 0 on its own still fails the pair (exit 1)', async (t) => {
  const appCmd = 'while [ ! -e "$FAKE_STATE_DIR/sidecar.json" ]; do sleep 0.05; done; exit 0';
  const run = startRole(t, 'terminator', { ...TERMINATOR_ENV, APP_CMD: appCmd });
  const { code } = await run.exited;
  t.equal(code, 1);
  const sidecar = readState(run, 'sidecar');
  t.ok(sidecar, 'the sidecar had started');
  t.equal(signalFile(run, 'sidecar'), 'SIGTERM', 'the sidecar was sent SIGTERM');
  t.equal(alive(sidecar?.pid ?? 0), false, 'the sidecar is gone');
});

for (const [signal, status] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
] as const) {
  t.test(`${signal} to the entrypoint is forwarded to both and it exits ${status}`, async (t) => {
    const run = startRole(t, 'terminator', TERMINATOR_ENV);
    const { app, sidecar } = await bothUp(run);
    run.child.kill(signal);
    const { code } = await run.exited;
    t.equal(code, status);
    t.equal(signalFile(run, 'app'), signal, `the app received ${signal}`);
    t.equal(signalFile(run, 'sidecar'), signal, `the sidecar received ${signal}`);
    t.equal(alive(app.pid), false);
    t.equal(alive(sidecar.pid), false);
  });
}

t.test('an app that ignores SIGTERM is killed after the grace period', async (t) => {
  // supervise.sh alone: the entrypoint refuses a grace this short against the templates' 8 s drain.
  const run = start(t, path.join(ENTRYPOINT_DIR, 'supervise.sh'), [
    '--app',
    "trap '' TERM; echo $$ > \"$FAKE_STATE_DIR/stubborn.pid\"; while :; do sleep 1; done",
    '--',
    'bash',
    '-c',
    'exec node "$FAKE_PROC_JS" sidecar "$FAKE_STATE_DIR"',
  ], { SUPERVISE_STOP_GRACE_SECS: '1' });
  const stubborn = await waitFor('the app', () => {
    const file = path.join(run.stateDir, 'stubborn.pid');
    return existsSync(file) && readFileSync(file, 'utf8').trim() !== '' ? Number(readFileSync(file, 'utf8')) : undefined;
  });
  await waitFor('the sidecar', () => readState(run, 'sidecar'));
  await waitFor('the supervisor to be up', () => (jsonLines(run.stderr).some((e) => e.msg === 'started app and sidecar') ? true : undefined));
  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  t.equal(code, 143);
  t.equal(alive(stubborn), false, 'the stubborn app was killed');
  t.ok(jsonLines(run.stderr).some((e) => e.msg === 'grace period over; killing what is left' && e.stop_grace_secs === 1), 'the supervisor says it used SIGKILL');
  const stopped = jsonLines(run.stderr).find((e) => e.msg === 'both processes stopped');
  t.equal(stopped?.app_status, 137, 'the app ended by SIGKILL');
  t.equal(stopped?.sidecar_status, 0, 'the sidecar stopped on SIGTERM');
});

t.test('doctor failing: the entrypoint prints its report and refuses to start', async (t) => {
  const run = startRole(t, 'initiator', { ...INITIATOR_ENV, FAKE_DOCTOR_STATUS: '1', FAKE_DOCTOR_VERDICT: 'FAILED' });
  const { code } = await run.exited;
  t.equal(code, 1);
  t.match(run.stderr, 'fake doctor: kernel TCP-AO check FAILED', 'the report is shown');
  const refusal = jsonLines(run.stderr).find((e) => e.level === 50);
  t.match(refusal?.msg, /doctor reported a failing check; refusing to start/);
  t.equal(readState(run, 'app'), undefined, 'the app was never started');
  t.equal(readState(run, 'sidecar'), undefined, 'the sidecar was never started');
});

t.test("terminator: off-host TCP to the app's ports (gobmp's two and FORWARD_PLAIN's) is dropped before the app starts", async (t) => {
  const run = startRole(t, 'terminator', { ...TERMINATOR_ENV, FORWARD_PLAIN: '127.0.0.1:11020' });
  await bothUp(run);
  t.equal(readFileSync(path.join(run.stateDir, 'guard.args'), 'utf8').trim(), '11019 11020 56767', "the guard got the image's app ports and FORWARD_PLAIN's, each once");
  const lines = jsonLines(run.stderr);
  const guarded = lines.findIndex((e) => e.msg === "off-host TCP to the app's ports is dropped");
  t.ok(guarded >= 0, 'the entrypoint logs the guard');
  t.equal(lines[guarded]?.ports, '11019 11020 56767');
  t.ok(guarded < lines.findIndex((e) => typeof e.msg === 'string' && e.msg.startsWith('starting the app')), 'before the app starts');
});

t.test('initiator: its app only dials out, so no port guard runs', async (t) => {
  const run = startRole(t, 'initiator', INITIATOR_ENV);
  await bothUp(run);
  t.notOk(existsSync(path.join(run.stateDir, 'guard.args')), 'the guard was not called');
});

t.test('terminator: a port guard that cannot be installed (no CAP_NET_ADMIN) refuses to start anything', async (t) => {
  const run = startRole(t, 'terminator', { ...TERMINATOR_ENV, FAKE_GUARD_FAIL: '1' });
  const { code } = await run.exited;
  t.equal(code, 1);
  const refusal = jsonLines(run.stderr).find((e) => e.level === 50);
  t.equal(refusal?.code, 'ERR_TCPAO_PORT_GUARD');
  t.match(refusal?.msg, /refusing to start the app exposed \(run the container with --cap-add NET_ADMIN\)/);
  t.match(refusal?.detail, /Operation not permitted/, 'with what nft said');
  t.equal(readState(run, 'app'), undefined, 'the app was never started');
  t.equal(readState(run, 'sidecar'), undefined, 'the sidecar was never started');
});

t.test('bad input is refused with exit 2 and one coded line, before anything starts', async (t) => {
  const cases: [string, 'initiator' | 'terminator', Record<string, string>, string][] = [
    ['no key', 'initiator', { REMOTE_AO: '10.10.10.2:1790' }, 'ERR_TCPAO_KEY_SOURCE'],
    ['both key sources', 'initiator', { ...INITIATOR_ENV, TCPAO_KEY_FILE: '/etc/hostname' }, 'ERR_TCPAO_KEY_SOURCE'],
    ['unreadable key file', 'terminator', { PEER_IP: '10.10.10.1', TCPAO_KEY_FILE: '/nonexistent/key' }, 'ERR_TCPAO_KEY_SOURCE'],
    ['missing REMOTE_AO', 'initiator', { TCPAO_KEY: KEY }, 'ERR_TCPAO_RENDER_MISSING_VAR'],
    ['newline in PEER_IP', 'terminator', { TCPAO_KEY: KEY, PEER_IP: '10.10.10.1\nx' }, 'ERR_TCPAO_RENDER_INVALID_VALUE'],
    ['empty APP_CMD', 'terminator', { ...TERMINATOR_ENV, APP_CMD: ' ' }, 'ERR_TCPAO_USAGE'],
    ['missing template dir', 'terminator', { ...TERMINATOR_ENV, TCPAO_TEMPLATE_DIR: '/nonexistent' }, 'ERR_TCPAO_RENDER_TEMPLATE'],
  ];
  for (const [label, role, env, code] of cases) {
    const run = startRole(t, role, env);
    const result = await run.exited;
    t.equal(result.code, 2, `${label}: exit 2`);
    t.match(run.stderr, code, `${label}: ${code}`);
    t.notMatch(run.stderr, /\n\s+at /, `${label}: no stack trace`);
    t.equal(readState(run, 'sidecar'), undefined, `${label}: nothing started`);
    assertNoKey(t, run);
  }
});

t.test('TCPAO_KEY_FILE: the key is staged from the file and no process gets TCPAO_KEY or TCPAO_KEY_FILE', async (t) => {
  const keyDir = mkdtempSync(path.join(tmpdir(), 'tcpao-key-'));
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }));
  const keyFile = path.join(keyDir, 'tcpao_key');
  writeFileSync(keyFile, KEY, { mode: 0o600 });
  const run = startRole(t, 'terminator', { PEER_IP: '10.10.10.1', TCPAO_KEY_FILE: keyFile });
  const { app, sidecar } = await bothUp(run);
  const config = TOML.parse(readFileSync(run.configPath, 'utf8')) as Record<string, any>;
  t.equal(config.ao_policy[0].key_source, `file:${run.stagedKeyFile}`);
  t.equal(sidecar.keySha256, KEY_SHA256, 'the staged copy holds the key');
  t.equal(sidecar.hasKeyEnv, false);
  t.equal(sidecar.hasKeyFileEnv, false, 'the sidecar needs no TCPAO_KEY_FILE');
  t.equal(app.hasKeyFileEnv, false, 'nor does the app');
  run.child.kill('SIGTERM');
  await run.exited;
  assertNoKey(t, run);
});

t.test('the entrypoint takes no arguments', async (t) => {
  const run = start(t, path.join(ENTRYPOINT_DIR, 'initiator.sh'), ['gobgpd'], INITIATOR_ENV);
  t.equal((await run.exited).code, 2);
  t.match(run.stderr, 'ERR_TCPAO_USAGE');
  const help = start(t, path.join(ENTRYPOINT_DIR, 'terminator.sh'), ['--help'], {});
  t.equal((await help.exited).code, 0);
  t.match(help.stdout, /TCPAO_KEY_FILE/);
});

t.test('supervise.sh on its own: first status passed on, usage errors exit 2', async (t) => {
  const supervise = path.join(ENTRYPOINT_DIR, 'supervise.sh');
  const sidecarCmd = 'while [ ! -e "$FAKE_STATE_DIR/app.json" ]; do sleep 0.05; done; exit 3';
  const failing = start(t, supervise, ['--app', `exec node ${FAKE_PROC_JS} app "$FAKE_STATE_DIR"`, '--', 'bash', '-c', sidecarCmd], {});
  t.equal((await failing.exited).code, 3);
  t.equal(signalFile(failing, 'app'), 'SIGTERM', 'the app was sent SIGTERM');
  t.equal(alive(readState(failing, 'app')?.pid ?? 0), false, 'the app is gone');
  t.ok(jsonLines(failing.stderr).some((e) => e.process === 'sidecar' && e.status === 3));

  for (const args of [['--', 'true'], ['--app', 'true'], ['--app', '', '--', 'true'], ['--bogus']]) {
    const run = start(t, supervise, args, {});
    t.equal((await run.exited).code, 2, `usage error for ${JSON.stringify(args)}`);
    t.match(jsonLines(run.stderr)[0]?.code, 'ERR_TCPAO_USAGE');
  }
});

/** Whether this kernel has TCP-AO, asked through the real addon (undefined: no addon built). */
function kernelHasTcpAo(): boolean | undefined {
  try {
    const native = require('../../src/native/index.js') as { defaultBinding(): { probeTcpAo(): { supported: boolean } } };
    return native.defaultBinding().probeTcpAo().supported;
  } catch {
    return undefined;
  }
}

const aoSupport = kernelHasTcpAo();
t.test(
  'with the real tcpao-proxy: refuses to start without TCP-AO, runs the pair with it',
  { skip: aoSupport === undefined || !existsSync(path.join(ROOT, 'dist', 'src', 'main.js')) ? 'the sidecar is not built (npm run build)' : false },
  async (t) => {
    const port = 20_000 + (process.pid % 20_000);
    const run = startRole(t, 'terminator', {
      TCPAO_KEY: KEY,
      PEER_IP: '127.0.0.1',
      LISTEN_AO: `127.0.0.1:${port}`,
      TCPAO_PROXY_BIN: path.join(ROOT, 'bin', 'tcpao-proxy'),
    });
    if (aoSupport === false) {
      const { code } = await run.exited;
      t.equal(code, 1, 'exit status of the failing doctor');
      t.match(run.stderr, /FAIL\s+TCP-AO runtime probe\s+kernel built without CONFIG_TCP_AO/, 'the report names the missing kernel feature');
      t.ok(jsonLines(run.stderr).some((e) => e.msg === 'doctor reported a failing check; refusing to start (see its report above)'));
      t.equal(readState(run, 'app'), undefined, 'the app was never started');
    } else {
      await waitFor('the AO listener', () => (run.stdout.includes('listener AO policies installed') ? true : undefined));
      const installed = jsonLines(run.stdout).find((e) => e.event === 'listener_ao_installed');
      t.ok(installed, 'the sidecar logs its listener AO policies');
      await waitFor('the app', () => readState(run, 'app'));
      run.child.kill('SIGTERM');
      t.equal((await run.exited).code, 143, 'SIGTERM stops the pair: exit 143');
      t.equal(signalFile(run, 'app'), 'SIGTERM', 'the app received SIGTERM');
    }
    assertNoKey(t, run);
  },
);

t.test('supervise.sh: a SIGHUP that the sidecar does not catch yet is held back, not passed on to end it', async (t) => {
  const supervise = path.join(ENTRYPOINT_DIR, 'supervise.sh');
  // `sleep` never installs a SIGHUP handler, like a sidecar still starting up.
  const sidecarCmd = 'echo $$ > "$FAKE_STATE_DIR/sleeper.pid"; exec sleep 600';
  const run = start(t, supervise, ['--app', `exec node ${FAKE_PROC_JS} app "$FAKE_STATE_DIR"`, '--', 'bash', '-c', sidecarCmd], {});
  await waitFor('the app', () => readState(run, 'app'));
  const sleeper = await waitFor('the sidecar', () => {
    const file = path.join(run.stateDir, 'sleeper.pid');
    return existsSync(file) && readFileSync(file, 'utf8').trim() !== '' ? Number(readFileSync(file, 'utf8')) : undefined;
  });
  await waitFor('the supervisor to be up', () => (jsonLines(run.stderr).some((e) => e.msg === 'started app and sidecar') ? true : undefined));
  run.child.kill('SIGHUP');
  const held = await waitFor('the held-back line', () => jsonLines(run.stderr).find((e) => e.signal === 'HUP'));
  t.equal(held.level, 40);
  t.match(held.msg, /before the sidecar could reload; ignored it/);
  t.equal(alive(sleeper), true, 'the sidecar is still running');
  t.equal(run.child.exitCode, null, 'so is the supervisor');
  run.child.kill('SIGTERM');
  t.equal((await run.exited).code, 143);
  if (alive(sleeper)) process.kill(sleeper, 'SIGKILL');
});

t.test('an init or shell in front of the entrypoint that holds TCPAO_KEY in its environment is refused', async (t) => {
  // bash runs the entrypoint as a child (it must still run `exit`), so bash keeps TCPAO_KEY in its /proc/PID/environ.
  const run = start(t, 'bash', ['-c', `"${path.join(ENTRYPOINT_DIR, 'terminator.sh')}"; exit $?`], TERMINATOR_ENV);
  t.equal((await run.exited).code, 2);
  const refusal = jsonLines(run.stderr).find((e) => e.level === 50);
  t.equal(refusal?.code, 'ERR_TCPAO_USAGE');
  t.match(refusal?.msg, /the parent process \(PID \d+, bash\) was started with TCPAO_KEY/);
  t.equal(readState(run, 'app'), undefined, 'nothing started');
  assertNoKey(t, run);

  const keyDir = mkdtempSync(path.join(tmpdir(), 'tcpao-key-'));
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }));
  writeFileSync(path.join(keyDir, 'key'), KEY, { mode: 0o600 });
  const fromFile = start(t, 'bash', ['-c', `"${path.join(ENTRYPOINT_DIR, 'terminator.sh')}"; exit $?`], {
    PEER_IP: '10.10.10.1',
    TCPAO_KEY_FILE: path.join(keyDir, 'key'),
  });
  await waitFor('the sidecar', () => readState(fromFile, 'sidecar'));
  t.pass('with TCPAO_KEY_FILE the parent holds only a path, and the entrypoint starts');
  fromFile.child.kill('SIGTERM');
  await fromFile.exited;
});
