/**
 * The kernel lab itself, driven from the host: the command's exit status is
 * the lab's, output streams out, and the probe answers differently inside and
 * outside. Run by scripts/test-all after the lab kernel is built.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { probeTcpAo } from '../../src/native';

const REPO = join(__dirname, '..', '..', '..');
const LAB = join(REPO, 'scripts', 'kernel-lab');

function lab(args: readonly string[]) {
  return spawnSync(LAB, ['run', '--', ...args], { cwd: REPO, encoding: 'utf8', timeout: 900_000 });
}

t.test('the command exit status is the lab exit status', async (t) => {
  const failing = lab(['bash', '-c', 'echo from-the-guest; exit 3']);
  t.equal(failing.status, 3, 'a command exiting 3 makes the lab exit 3');
  t.match(failing.stdout, /from-the-guest/, 'the command output streams out');
  t.notMatch(failing.stdout, /SeaBIOS|Linux version/, 'firmware and kernel noise are not shown');
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
  t.match(result.stdout, new RegExp(`cwd=${REPO} lab=1 uid=0`), 'cwd, TCPAO_LAB and uid as documented');
});

t.test('the capability probe: unsupported on this host, supported in the lab', async (t) => {
  const host = probeTcpAo();
  const inside = lab(['node', '-e', "process.stdout.write(JSON.stringify(require('./dist/src/native').probeTcpAo()))"]);
  t.equal(inside.status, 0);
  t.same(JSON.parse(inside.stdout.trim().split('\n').pop() ?? '{}'), { supported: true }, 'the lab kernel has TCP-AO');
  if (host.supported) {
    t.pass('this host kernel has TCP-AO too', { skip: 'the host has TCP-AO; nothing to contrast' });
  } else {
    t.equal(host.code, 'ENOPROTOOPT', 'the host kernel lacks TCP-AO: ENOPROTOOPT');
    t.match(host.reason, /CONFIG_TCP_AO/, 'and says why');
  }
});
