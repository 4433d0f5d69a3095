// `tcpao-proxy doctor` against the real kernel and addon. On a kernel without
// TCP-AO the probe fails with exit 1; on a TCP-AO kernel (the lab) a valid
// config passes every check with exit 0. Config failures are checked on either
// kernel. The key never appears on stdout or stderr. One run per case goes
// through bin/tcpao-proxy in a child process; the others call the same CLI
// dispatcher in-process, because each node start costs about a minute in the
// emulated lab.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import t, { type Test } from 'tap';

import { runCli } from '../../src/cli.js';
import type { CheckResult, DoctorReport } from '../../src/doctor/types.js';
import { aoSupport, skipUnlessAo } from '../helpers/ao.js';

const REPO_ROOT = resolve(__dirname, '..', '..', '..');
const CLI = join(REPO_ROOT, 'bin', 'tcpao-proxy');
const WRAPPER = join(REPO_ROOT, 'scripts', 'doctor.sh');
const KEY = 'native-doctor-secret-7Hq2';
/**
 * Checks that may be skipped on a healthy TCP-AO host, and why. The lab kernel
 * has /proc/config.gz, so inside it nothing may be skipped.
 */
const INHERENT_SKIPS: ReadonlyMap<string, RegExp> =
  process.env['TCPAO_LAB'] === '1'
    ? new Map()
    : new Map([
        // Many kernels are built without CONFIG_IKCONFIG_PROC and have no /boot/config-*.
        ['kernel', /no build config readable/],
      ]);

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', TCPAO_KEY: KEY, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
}

/** bin/tcpao-proxy doctor ARGS in a child process. */
function doctor(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(process.execPath, [CLI, 'doctor', ...args], env);
}

/** The same command through the CLI dispatcher in this process, with the real dependencies. */
async function doctorInProcess(args: readonly string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (text: string) => (stdout += text),
    stderr: (text: string) => (stderr += text),
    env: { ...process.env, NO_COLOR: '1', TCPAO_KEY: KEY },
  };
  const notRun = async (): Promise<void> => {
    throw new Error('doctor must not start the sidecar');
  };
  const status = await runCli(['doctor', ...args], io, { runSidecar: notRun });
  return { status, stdout, stderr };
}

function assertKeyAbsent(t: Test, result: Run): void {
  const output = result.stdout + result.stderr;
  const key = Buffer.from(KEY);
  for (const form of [KEY, key.toString('hex'), key.toString('base64')]) {
    t.notOk(output.includes(form), `the output carries no ${form === KEY ? 'raw' : form.length === key.length * 2 ? 'hex' : 'base64'} form of the key`);
  }
}

function check(report: DoctorReport, id: string): CheckResult {
  const found = report.checks.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no check ${id} in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
}

function scratchDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-doctor-native-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function listenPlain(t: Test): Promise<number> {
  const server = net.createServer((socket) => socket.destroy());
  t.teardown(() => new Promise<void>((done) => server.close(() => done())));
  await new Promise<void>((done, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => done());
  });
  return (server.address() as net.AddressInfo).port;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((done) => server.listen({ host: '127.0.0.1', port: 0 }, () => done()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

function policy(alg: string, keySource = 'env:TCPAO_KEY', name = 'bmp-wire'): string {
  return `[[ao_policy]]\nname = "${name}"\npeer_ip = "127.0.0.1"\nkeyid = 1\nmac_alg = "${alg}"\nkey_source = "${keySource}"\n`;
}

function terminatorConfig(dir: string, listenPort: number, appPort: number, alg = 'hmac-sha256', keySource?: string): string {
  const path = join(dir, `terminator-${listenPort}.toml`);
  writeFileSync(path, `[terminator]\nlisten_ao = "127.0.0.1:${listenPort}"\nforward_plain = "127.0.0.1:${appPort}"\n\n${policy(alg, keySource)}`);
  return path;
}

function initiatorConfig(dir: string, plainPort: number, remotePort: number): string {
  const path = join(dir, `initiator-${plainPort}.toml`);
  writeFileSync(path, `[initiator]\nlisten_plain = "127.0.0.1:${plainPort}"\nremote_ao = "127.0.0.1:${remotePort}"\n\n${policy('aes-128-cmac')}`);
  return path;
}

t.test('on a kernel without TCP-AO the probe fails: exit 1, human and --json alike', async (t) => {
  const support = aoSupport();
  if (support.supported) {
    t.pass('needs a kernel without TCP-AO', { skip: 'this kernel has TCP-AO; the lab test below covers it' });
    return;
  }
  if (!/ENOPROTOOPT/.test(support.reason)) {
    t.pass('needs the built addon on a kernel without TCP-AO', { skip: support.reason });
    return;
  }
  const human = await doctor([]);
  t.equal(human.status, 1, 'exit status 1');
  t.equal(human.stderr, '', 'nothing on stderr');
  t.match(human.stdout, /^ {2}FAIL {2}TCP-AO runtime probe +kernel built without CONFIG_TCP_AO$/m);
  t.match(human.stdout, /^ +remedy: boot a Linux 6\.7 or later kernel built with CONFIG_TCP_AO=y/m);
  t.match(human.stdout, /NOT READY/);

  const json = await doctor(['--json']);
  t.equal(json.status, 1);
  const report = JSON.parse(json.stdout) as DoctorReport;
  t.equal(report.schema, 'tcpao-proxy.doctor/v1');
  t.equal(report.ok, false);
  const probe = check(report, 'ao.probe');
  t.equal(probe.status, 'fail');
  t.equal(probe.finding, 'kernel built without CONFIG_TCP_AO');
  t.match(probe.remedy, /CONFIG_TCP_AO=y/);
  t.same(probe.detail, { errno: 92, code: 'ENOPROTOOPT', reason: 'kernel built without CONFIG_TCP_AO' });
  for (const id of ['mac.hmac-sha1', 'mac.hmac-sha256', 'mac.aes-128-cmac']) t.equal(check(report, id).status, 'skip');

  const wrapped = await run(WRAPPER, ['--json']);
  t.equal(wrapped.status, 1, 'scripts/doctor.sh passes the exit status through');
  t.equal(check(JSON.parse(wrapped.stdout) as DoctorReport, 'ao.probe').finding, 'kernel built without CONFIG_TCP_AO');
});

t.test('on a TCP-AO kernel a valid config passes every check: exit 0', async (t) => {
  if (!skipUnlessAo(t)) return;
  const dir = scratchDir(t);
  const appPort = await listenPlain(t);
  const terminator = await doctor(['--json', '--config', terminatorConfig(dir, await freePort(), appPort), '--mode', 'terminator']);
  const initiator = await doctorInProcess(['--json', '--config', initiatorConfig(dir, await freePort(), await freePort())]);
  for (const [side, result] of [['terminator', terminator], ['initiator', initiator]] as const) {
    t.equal(result.status, 0, `${side}: exit 0`);
    t.equal(result.stderr, '', `${side}: nothing on stderr`);
    assertKeyAbsent(t, result);
    const report = JSON.parse(result.stdout) as DoctorReport;
    t.equal(report.ok, true, `${side}: ok`);
    for (const c of report.checks) {
      if (c.status === 'pass') continue;
      // The terminator's key is hmac-sha256 (the spec's choice between sidecars): an interop warning, never a failure.
      if (side === 'terminator' && c.id === 'config.valid') {
        t.ok(c.status === 'warn' && c.finding.includes('WARN_TCPAO_ROUTER_MAC_ALG'), `${side}: config.valid warns about hmac-sha256: ${c.finding}`);
        continue;
      }
      const inherent = INHERENT_SKIPS.get(c.id);
      t.ok(c.status === 'skip' && inherent !== undefined && inherent.test(c.finding), `${side}: ${c.id} is ${c.status}: ${c.finding}`);
    }
    if (process.env['TCPAO_LAB'] === '1') {
      t.match(check(report, 'kernel').finding, /CONFIG_TCP_AO=y in \/proc\/config\.gz/, `${side}: the lab kernel's config says CONFIG_TCP_AO=y`);
    }
    for (const id of ['ao.probe', 'mac.hmac-sha1', 'mac.hmac-sha256', 'mac.aes-128-cmac', 'privileges', 'config.valid', 'key.bmp-wire', 'counters']) {
      const expected = side === 'terminator' && id === 'config.valid' ? 'warn' : 'pass';
      t.equal(check(report, id).status, expected, `${side}: ${id} ${expected === 'pass' ? 'passes' : 'warns'}`);
    }
  }

  const human = await doctorInProcess(['--config', terminatorConfig(dir, await freePort(), appPort)]);
  t.equal(human.status, 0);
  t.match(human.stdout, /^ {2}PASS {2}TCP-AO runtime probe +the kernel answers TCP-AO socket options$/m);
  t.match(human.stdout, /nothing fails/);
});

t.test('config failures through the CLI, on any kernel', async (t) => {
  const dir = scratchDir(t);
  const appPort = await listenPlain(t);

  const missingVar = await doctorInProcess(['--json', '--config', terminatorConfig(dir, await freePort(), appPort, 'hmac-sha256', 'env:TCPAO_KEY_NOT_SET')]);
  t.equal(missingVar.status, 1);
  const keyCheck = check(JSON.parse(missingVar.stdout) as DoctorReport, 'key.bmp-wire');
  t.equal(keyCheck.status, 'fail');
  t.match(keyCheck.finding, /environment variable TCPAO_KEY_NOT_SET is not set/);
  assertKeyAbsent(t, missingVar);

  const unreadable = await doctorInProcess(['--json', '--config', terminatorConfig(dir, await freePort(), appPort, 'hmac-sha256', `file:${dir}`)]);
  t.equal(unreadable.status, 1);
  const fileCheck = check(JSON.parse(unreadable.stdout) as DoctorReport, 'key.bmp-wire');
  t.equal(fileCheck.status, 'fail');
  t.match(fileCheck.finding, /is a directory, not a file/);
  assertKeyAbsent(t, unreadable);

  const busy = await doctorInProcess(['--config', terminatorConfig(dir, appPort, appPort)]);
  t.equal(busy.status, 1);
  t.match(busy.stdout, new RegExp(`^ {2}FAIL {2}Listen address listen_ao +127\\.0\\.0\\.1:${appPort}: port already in use$`, 'm'));
  assertKeyAbsent(t, busy);

  const usage = await doctorInProcess(['--config']);
  t.equal(usage.status, 2, 'a usage error exits 2');
  t.equal(usage.stdout, '');
  t.match(usage.stderr, /^tcpao-proxy: ERR_TCPAO_USAGE: --config\b[^\n]*\n$/, 'one coded line naming --config');
});
