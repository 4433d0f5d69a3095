// The running sidecar is not dumpable and may not write core files: its
// /proc/PID/{environ,mem} belong to root, so neither another process of its
// own uid nor one of a different uid can read them (setpriv drops to those
// uids), and RLIMIT_CORE is 0. Its env key is wiped from the environment
// block, so even root reading /proc/PID/environ finds no key. Needs a kernel
// with TCP-AO (the lab), where the test runs as root.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { skipUnlessAo } from '../helpers/ao.js';
import { isListening, LineProcess, REPO } from '../helpers/lab.js';
import { sideToml } from '../helpers/rotation.js';

const SIDECAR_UID = 1000;
const OTHER_UID = 65534;
const PORTS = { wire: 26_201, app: 26_202 };
const KEY = 'process-guard-key-5c1e9a77';
const CLI = join(REPO, 'bin', 'tcpao-proxy');

/** Runs `cat FILE` (or a read of /proc/PID/mem at a mapped address) as `uid`; returns its exit status and stderr. */
function readAs(uid: number, args: readonly string[]): { status: number | null; stderr: string } {
  const out = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--', ...args], {
    encoding: 'utf8',
  });
  return { status: out.status, stderr: out.stderr };
}

function firstMappedAddress(pid: number): number {
  const line = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => / r[w-]/.test(l)) ?? '';
  return parseInt(line.split('-')[0] ?? '0', 16);
}

if (skipUnlessAo(t)) {
  t.test('the sidecar cannot be read from outside or dump core', async (t) => {
    if (spawnSync('setpriv', ['--version']).status !== 0) {
      t.pass('needs setpriv', { skip: 'setpriv (util-linux) is not installed' });
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'tcpao-guard-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    const configPath = join(dir, 'terminator.toml');
    writeFileSync(
      configPath,
      sideToml({
        mode: 'terminator',
        localPort: PORTS.app,
        peer: '127.0.0.1',
        wireHost: '127.0.0.1',
        wirePort: PORTS.wire,
        single: { keyid: 1, source: 'env:TCPAO_GUARD_KEY' },
      }),
      { mode: 0o644 },
    );
    const child = spawn(
      'setpriv',
      ['--reuid', String(SIDECAR_UID), '--regid', String(SIDECAR_UID), '--clear-groups', '--', process.execPath, CLI, '--mode', 'terminator', '--config', configPath],
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TCPAO_GUARD_KEY: KEY }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const sidecar = new LineProcess('terminator', child);
    t.teardown(async () => {
      await sidecar.stop('SIGKILL');
    });
    await sidecar.waitFor(isListening, 120_000, 'listening line');
    const pid = child.pid as number;

    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    t.match(status, new RegExp(`^Uid:\\s+${SIDECAR_UID}\\s`, 'm'), `the sidecar runs as uid ${SIDECAR_UID}`);
    t.match(readFileSync(`/proc/${pid}/limits`, 'utf8'), /^Max core file size\s+0\s+0\s+bytes/m, 'RLIMIT_CORE is 0, soft and hard');
    for (const entry of ['environ', 'mem', 'status']) {
      t.equal(statSync(`/proc/${pid}/${entry}`).uid, 0, `/proc/PID/${entry} is root's: the process is not dumpable`);
    }

    const address = firstMappedAddress(pid);
    for (const [who, uid] of [['its own uid', SIDECAR_UID], ['another uid', OTHER_UID]] as const) {
      const environ = readAs(uid, ['cat', `/proc/${pid}/environ`]);
      t.not(environ.status, 0, `${who} cannot read /proc/PID/environ`);
      t.match(environ.stderr, /Permission denied/, `${who}: environ refused with EACCES`);
      const mem = readAs(uid, ['dd', `if=/proc/${pid}/mem`, 'bs=1', 'count=16', `skip=${address}`, 'iflag=skip_bytes', 'status=none']);
      t.not(mem.status, 0, `${who} cannot read /proc/PID/mem`);
      t.match(mem.stderr, /Permission denied/, `${who}: mem refused with EACCES`);
    }

    const environ = readFileSync(`/proc/${pid}/environ`);
    t.equal(environ.indexOf(KEY), -1, 'even root finds no key in /proc/PID/environ: the value was wiped in place');
    t.ok(environ.includes('TCPAO_GUARD_KEY='), 'the variable name is still there, its value zeroed');
  });
}
