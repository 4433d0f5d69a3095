// Key bytes have one owner each, and every other copy is zeroed once the
// kernel has it. Checked the way an attacker with a core file would: gcore
// (root can still dump the non-dumpable sidecar) after start and after a
// reload that changed a file key, then a search of the whole core for each
// key in every form the config accepts (raw, hex, HEX, base64, base64url).
//
// What may remain: the key's SecretKey (one raw copy per live key) and, for an
// env key, the one copy of the value as it was given, moved out of the
// environment so reloads can read it again. An old key must be gone entirely.
// Needs a kernel with TCP-AO (the lab) and gdb.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { skipUnlessAo } from '../helpers/ao.js';
import { isListening, keyEncodings, LineProcess, REPO } from '../helpers/lab.js';
import { sideToml } from '../helpers/rotation.js';

const PORTS = { wire: 26_301, app: 26_302 };
const CLI = join(REPO, 'bin', 'tcpao-proxy');
const CHUNK = 16 * 1024 * 1024;

/** How often each pattern occurs in a file, read in chunks that overlap by the longest pattern. */
function countInFile(path: string, patterns: readonly string[]): number[] {
  const needles = patterns.map((p) => Buffer.from(p, 'latin1'));
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const counts = needles.map(() => 0);
  const buffer = Buffer.alloc(CHUNK + overlap);
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let readSoFar = 0;
    let carried = 0;
    while (readSoFar < size) {
      const n = readSync(fd, buffer, carried, CHUNK, null);
      if (n === 0) break;
      readSoFar += n;
      const filled = carried + n;
      const last = readSoFar >= size;
      // A match that starts in the tail carried into the next round is counted there.
      const limit = last ? filled : filled - overlap;
      needles.forEach((needle, i) => {
        for (let at = buffer.indexOf(needle); at >= 0 && at < limit && at + needle.length <= filled; at = buffer.indexOf(needle, at + 1)) {
          counts[i] = (counts[i] ?? 0) + 1;
        }
      });
      buffer.copy(buffer, 0, filled - overlap, filled);
      carried = overlap;
    }
  } finally {
    closeSync(fd);
  }
  return counts;
}

interface KeyUnderTest {
  readonly name: string;
  readonly text: string;
  /** The form the config hands over (the env value or the file content). */
  readonly configured: string;
}

/** Per key: copies of the raw bytes, of the form the config handed over, and of every other form. */
interface Counts {
  readonly raw: number;
  readonly configured: number;
  readonly other: Readonly<Record<string, number>>;
}

/** Dumps the process with gdb's gcore and counts every form of every key in the core. */
function scanCore(t: Test, dir: string, pid: number, keys: readonly KeyUnderTest[], label: string): Counts[] {
  const prefix = join(dir, `core-${label.replace(/\W+/g, '-')}`);
  const dump = spawnSync('gcore', ['-o', prefix, String(pid)], { encoding: 'utf8' });
  const core = `${prefix}.${pid}`;
  t.teardown(() => rmSync(core, { force: true }));
  if (dump.status !== 0) throw new Error(`gcore failed (${dump.status}): ${dump.stderr}`);
  const forms = keys.map((key) => [...new Set(keyEncodings(key.text))]);
  const flat = countInFile(core, forms.flat());
  rmSync(core, { force: true });
  let index = 0;
  const result = keys.map((key, k): Counts => {
    let rawCount = 0;
    let configured = 0;
    const other: Record<string, number> = {};
    for (const form of forms[k] ?? []) {
      const n = flat[index++] ?? 0;
      // base64url without padding is part of the padded base64 text: the same copy, not another one.
      if (form === key.text) rawCount = n;
      else if (key.configured.includes(form)) configured = Math.max(configured, n);
      else other[form] = n;
    }
    return { raw: rawCount, configured, other };
  });
  t.comment(`${label}: ${JSON.stringify(Object.fromEntries(keys.map((key, k) => [key.name, result[k]])))}`);
  return result;
}

const others = (counts: Counts | undefined): number => Object.values(counts?.other ?? {}).reduce((sum, n) => sum + n, 0);

if (skipUnlessAo(t)) {
  t.test('a core dump holds no key copies beyond their owners, and none of a replaced key', async (t) => {
    // gcore has no --version (it prints its usage and exits 1): ask gdb, and the shell for gcore.
    if (spawnSync('gdb', ['--version']).status !== 0 || spawnSync('sh', ['-c', 'command -v gcore']).status !== 0) {
      t.pass('needs gcore', { skip: 'gdb (gcore) is not installed' });
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'tcpao-wipe-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const envKey = `wipe-env-${randomBytes(8).toString('hex')}`;
    const oldFileKey = `wipe-old-${randomBytes(8).toString('hex')}`;
    const newFileKey = `wipe-new-${randomBytes(8).toString('hex')}`;
    const env: KeyUnderTest = { name: 'env key (env-base64)', text: envKey, configured: Buffer.from(envKey).toString('base64') };
    const oldFile: KeyUnderTest = { name: 'old file key (file-hex)', text: oldFileKey, configured: Buffer.from(oldFileKey).toString('hex') };
    const newFile: KeyUnderTest = { name: 'new file key (file-hex)', text: newFileKey, configured: Buffer.from(newFileKey).toString('hex') };

    const keyFile = join(dir, 'wire.key');
    writeFileSync(keyFile, `${oldFile.configured}\n`, { mode: 0o600 });
    const configPath = join(dir, 'terminator.toml');
    writeFileSync(
      configPath,
      sideToml({
        mode: 'terminator',
        localPort: PORTS.app,
        peer: '127.0.0.1',
        wireHost: '127.0.0.1',
        wirePort: PORTS.wire,
        keys: [
          { sendId: 1, recvId: 1, role: 'preferred', source: 'env-base64:TCPAO_WIPE_ENV_KEY' },
          { sendId: 2, recvId: 2, role: 'accept', source: `file-hex:${keyFile}` },
        ],
      }),
    );
    // Without tap's NODE_OPTIONS: its processinfo --import starts a loader-hooks
    // thread, and a worker gets its own copy of the environment, key included,
    // which no sidecar outside tap has. `env` execs, so the pid is the sidecar's.
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, CLI, '--mode', 'terminator', '--config', configPath], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TCPAO_WIPE_ENV_KEY: env.configured },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const sidecar = new LineProcess('terminator', child);
    t.teardown(async () => {
      await sidecar.stop('SIGKILL');
    });
    await sidecar.waitFor(isListening, 120_000, 'listening line');
    const pid = child.pid as number;

    const [envAtStart, fileAtStart] = scanCore(t, dir, pid, [env, oldFile], 'after start');
    t.ok((envAtStart?.raw ?? 99) <= 1, 'the env key: at most its SecretKey holds the raw bytes');
    t.ok((envAtStart?.configured ?? 99) <= 1, 'the env key: at most one copy of its base64 value (taken out of the environment)');
    t.equal(others(envAtStart), 0, 'the env key: no copy in any other form');
    t.ok((fileAtStart?.raw ?? 99) <= 1, 'the file key: at most its SecretKey holds the raw bytes');
    t.equal(fileAtStart?.configured, 0, 'the file key: its hex text is gone');
    t.equal(others(fileAtStart), 0, 'the file key: no copy in any other form');

    writeFileSync(keyFile, `${newFile.configured}\n`, { mode: 0o600 });
    process.kill(pid, 'SIGHUP');
    const outcome = await sidecar.waitFor(
      (line) => line['event'] === 'reload_applied' || line['event'] === 'reload_failed',
      120_000,
      'reload outcome',
    );
    t.equal(outcome['event'], 'reload_applied', 'the reload replaced the file key');

    const [envAfter, oldAfter, newAfter] = scanCore(t, dir, pid, [env, oldFile, newFile], 'after reload');
    t.equal(oldAfter?.raw, 0, 'the replaced file key: no raw copy left');
    t.equal((oldAfter?.configured ?? 99) + others(oldAfter), 0, 'the replaced file key: no copy in any form');
    t.ok((newAfter?.raw ?? 99) <= 1, 'the new file key: at most its SecretKey');
    t.equal((newAfter?.configured ?? 99) + others(newAfter), 0, 'the new file key: no other form');
    t.ok((envAfter?.raw ?? 99) <= 1, 'the env key, read again by the reload: still at most one raw copy');
    t.ok((envAfter?.configured ?? 99) <= 1, 'the env key: still at most one copy of its base64 value');
    t.equal(others(envAfter), 0, 'the env key: no copy in any other form');
  });
}
