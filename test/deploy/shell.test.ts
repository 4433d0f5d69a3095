/**
 * The deploy kit's shell scripts parse, and pass shellcheck where it is
 * installed (GitHub's runners have it; `apt-get install shellcheck` here).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SCRIPTS = [
  'deploy/entrypoint/common.sh',
  'deploy/entrypoint/initiator.sh',
  'deploy/entrypoint/terminator.sh',
  'deploy/entrypoint/supervise.sh',
  'deploy/entrypoint/guard-local-ports.sh',
  'scripts/render-config',
  'test/deploy/fixtures/fake-tcpao-proxy',
];

t.test('bash -n', async (t) => {
  for (const script of SCRIPTS) {
    const result = spawnSync('bash', ['-n', script], { cwd: ROOT, encoding: 'utf8' });
    t.equal(result.status, 0, `${script} parses${result.stderr === '' ? '' : `: ${result.stderr}`}`);
  }
});

const shellcheck = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
t.test('shellcheck -x', { skip: shellcheck.status === 0 ? false : 'shellcheck is not installed' }, async (t) => {
  const result = spawnSync('shellcheck', ['-x', ...SCRIPTS], { cwd: ROOT, encoding: 'utf8' });
  t.equal(result.status, 0, result.stdout);
});

t.test('guard-local-ports.sh refuses bad ports before touching nftables', async (t) => {
  for (const args of [[], ['0'], ['65536'], ['11019', 'x']]) {
    // No PATH: should a refusal ever be missed, nft cannot be found and the host firewall stays untouched.
    const result = spawnSync('/bin/bash', [path.join(ROOT, 'deploy/entrypoint/guard-local-ports.sh'), ...args], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    t.equal(result.status, 2, `refused: ${JSON.stringify(args)}`);
    t.notMatch(result.stderr, /command not found/, 'nothing from PATH was run');
  }
});
