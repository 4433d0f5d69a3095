/**
 * The kernel lab itself, driven from the host: the command's exit status is
 * the lab's, output streams out, and the probe answers differently inside and
 * outside. Run by scripts/test-all after the lab kernel is built.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { defaultBinding } from '../../src/native/index.js';

const binding = defaultBinding();

const REPO = join(__dirname, '..', '..', '..');
const LAB = join(REPO, 'scripts', 'kernel-lab');

/**
 * The lab forwards TAP_* and NODE_OPTIONS into the guest; this test's own
 * harness settings must not go, or a node started in the guest reports to this
 * tap run as its child (coverage included) and fails it. tap hooks spawn and
 * puts its NODE_OPTIONS back into any child's environment, so `env -u` drops
 * it after that hook.
 */
const labEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TAP') && !name.startsWith('_TAPJS')));

function lab(args: readonly string[], cwd = REPO) {
  return spawnSync('env', ['-u', 'NODE_OPTIONS', LAB, 'run', '--', ...args], { cwd, env: labEnv, encoding: 'utf8', timeout: 900_000 });
}

t.test('the command exit status is the lab exit status', async (t) => {
  const failing = lab(['bash', '-c', 'echo from-the-guest; exit 3']);
  t.equal(failing.status, 3, 'a command exiting 3 makes the lab exit 3');
  t.match(failing.stdout, /from-the-guest/, 'the command output streams out');
  t.notMatch(failing.stdout, /SeaBIOS|Linux version|@@tcpao-lab/, 'firmware, kernel noise and the markers are not shown');
  const passing = lab(['true']);
  t.equal(passing.status, 0, 'a command exiting 0 makes the lab exit 0');
});

t.test('a failing test inside the lab fails the run outside it', async (t) => {
  const result = lab(['node', '-e', "require('node:assert').strictEqual(1, 2)"]);
  t.not(result.status, 0, 'an assertion failure inside is a non-zero status outside');
});

t.test('the lab runs in the caller directory with TCPAO_LAB set, as root', async (t) => {
  const result = lab(['bash', '-c', 'echo "cwd=$PWD lab=$TCPAO_LAB uid=$(id -u)"']);
  t.equal(result.status, 0);
  // A literal line: the clone's path may hold characters a RegExp would read as operators.
  t.ok(result.stdout.split(/\r?\n/).includes(`cwd=${REPO} lab=1 uid=0`), 'cwd, TCPAO_LAB and uid as documented', { found: result.stdout });
});

t.test('a caller directory under /tmp is the host directory, not the guest tmpfs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-lab-cwd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'from-host'), 'host-file\n');
  const result = lab(['bash', '-c', 'cat from-host && echo guest-file >from-guest'], dir);
  t.equal(result.status, 0, 'the command ran', { stderr: result.stderr });
  t.match(result.stdout, /host-file/, 'the guest reads a file the host wrote there');
  t.equal(readFileSync(join(dir, 'from-guest'), 'utf8'), 'guest-file\n', 'the host reads a file the guest wrote there');
});

t.test('the capability probe: unsupported on this host, supported in the lab', async (t) => {
  const host = binding.probeTcpAo();
  const inside = lab(['node', '-e', "process.stdout.write(JSON.stringify(require('./dist/src/native/index.js').defaultBinding().probeTcpAo()))"]);
  t.equal(inside.status, 0);
  t.same(JSON.parse(inside.stdout.trim().split('\n').pop() ?? '{}'), { supported: true }, 'the lab kernel has TCP-AO');
  if (host.supported) {
    t.pass('this host kernel has TCP-AO too', { skip: 'the host has TCP-AO; nothing to contrast' });
  } else {
    t.equal(host.code, 'ENOPROTOOPT', 'the host kernel lacks TCP-AO: ENOPROTOOPT');
    t.match(host.reason, /CONFIG_TCP_AO/, 'and says why');
  }
});
