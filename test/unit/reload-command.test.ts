/**
 * `tcpao-proxy reload`: finds the sidecar by --pid, --pid-file or the config's
 * pid_file, refuses to signal anything that is not a tcpao-proxy, and sends
 * SIGHUP to one that is.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { runCli, type CliDeps } from '../../src/cli.js';

const deps: CliDeps = { runSidecar: () => Promise.reject(new Error('not used')) };

async function reload(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const status = await runCli(['reload', ...args], { stdout: (text) => void stdout.push(text), stderr: (text) => void stderr.push(text), env: {} }, deps);
  return { status, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** A process whose command line names tcpao-proxy and that reports SIGHUP on stdout. */
function fakeSidecar(t: Test): Promise<{ pid: number; hup: Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['-e', 'process.on("SIGHUP", () => { process.stdout.write("hup\\n"); process.exit(0); }); process.stdout.write("ready\\n"); setInterval(() => {}, 1000);', 'tcpao-proxy'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let output = '';
  return new Promise((resolve) => {
    let hupSeen: () => void = () => undefined;
    const hup = new Promise<void>((resolveHup) => (hupSeen = resolveHup));
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      output += text;
      if (output.includes('ready') && child.pid !== undefined) resolve({ pid: child.pid, hup });
      if (output.includes('hup')) hupSeen();
    });
  });
}

t.test('exactly one way to find the process', async (t) => {
  const none = await reload([]);
  t.equal(none.status, 2);
  t.match(none.stderr, /^tcpao-proxy: ERR_TCPAO_USAGE: give exactly one of --pid, --pid-file or --config/);
  const two = await reload(['--pid', '1', '--pid-file', '/x']);
  t.equal(two.status, 2);
});

t.test('a pid that is not a tcpao-proxy is never signalled', async (t) => {
  const init = await reload(['--pid', String(process.pid)]);
  t.equal(init.status, 2);
  t.match(init.stderr, /ERR_TCPAO_RELOAD_TARGET: process \d+ is not a tcpao-proxy; refusing to send it SIGHUP/);
  const bad = await reload(['--pid', 'abc']);
  t.match(bad.stderr, /ERR_TCPAO_RELOAD_TARGET: --pid is not a process id/);
});

t.test('a missing pid file or config without pid_file says what to do', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = await reload(['--pid-file', join(dir, 'none.pid')]);
  t.equal(missing.status, 2);
  t.match(missing.stderr, /ERR_TCPAO_RELOAD_TARGET: cannot read the pid file .*none\.pid \(ENOENT\)/);
  writeFileSync(join(dir, 'c.toml'), '[terminator]\nlisten_ao = "10.0.0.2:1790"\n');
  const noPidFile = await reload(['--config', join(dir, 'c.toml')]);
  t.match(noPidFile.stderr, /ERR_TCPAO_USAGE: the config has no \[global\] pid_file/);
});

t.test('SIGHUP reaches a running tcpao-proxy by --pid, --pid-file and --config', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const how of ['--pid', '--pid-file', '--config'] as const) {
    const sidecar = await fakeSidecar(t);
    writeFileSync(join(dir, 'sidecar.pid'), `${sidecar.pid}\n`);
    writeFileSync(join(dir, 'sidecar.toml'), '[global]\npid_file = "sidecar.pid"\n');
    const args = how === '--pid' ? [how, String(sidecar.pid)] : how === '--pid-file' ? [how, join(dir, 'sidecar.pid')] : [how, join(dir, 'sidecar.toml')];
    const run = await reload(args);
    t.equal(run.status, 0, `${how}: exit 0`);
    t.match(run.stdout, `sent SIGHUP to tcpao-proxy ${sidecar.pid}`);
    await sidecar.hup;
    t.pass(`${how}: the process got SIGHUP`);
  }
});

t.test('a config or pid file that is a FIFO is refused at once instead of hanging the command', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-reload-fifo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('mkfifo', [join(dir, 'config.fifo'), join(dir, 'pid.fifo')]);
  const byConfig = await reload(['--config', join(dir, 'config.fifo')]);
  t.equal(byConfig.status, 2);
  t.match(byConfig.stderr, /^tcpao-proxy: ERR_TCPAO_USAGE: cannot read \[global\] pid_file from \S+config\.fifo/);
  const byPidFile = await reload(['--pid-file', join(dir, 'pid.fifo')]);
  t.equal(byPidFile.status, 2);
  t.equal(
    byPidFile.stderr,
    `tcpao-proxy: ERR_TCPAO_RELOAD_TARGET: cannot read the pid file ${join(dir, 'pid.fifo')} (it is a FIFO, not a regular file); is the sidecar running with this pid_file?\n`,
  );
});
