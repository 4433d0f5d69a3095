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
  'deploy/entrypoint/users.sh',
  'deploy/entrypoint/guard-local-ports.sh',
  'scripts/render-config',
  'scripts/build-apps',
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

const nft = spawnSync('nft', ['--version'], { encoding: 'utf8' });
const guardSkip =
  process.getuid?.() !== 0 ? 'needs root for network namespaces' : nft.status !== 0 ? 'nft is not installed (apt-get install nftables)' : false;

t.test('guard-local-ports.sh: off-host TCP to a guarded port is dropped, loopback still connects', { skip: guardSkip }, async (t) => {
  const suffix = `${process.pid}`;
  const app = `tguard-app-${suffix}`;
  const peer = `tguard-peer-${suffix}`;
  const ip = (...args: string[]): void => {
    const result = spawnSync('ip', args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr}`);
  };
  t.teardown(() => {
    spawnSync('ip', ['netns', 'del', app]);
    spawnSync('ip', ['netns', 'del', peer]);
  });
  ip('netns', 'add', app);
  ip('netns', 'add', peer);
  ip('link', 'add', 'tg-app', 'netns', app, 'type', 'veth', 'peer', 'name', 'tg-peer', 'netns', peer);
  ip('-n', app, 'addr', 'add', '192.0.2.2/24', 'dev', 'tg-app');
  ip('-n', peer, 'addr', 'add', '192.0.2.1/24', 'dev', 'tg-peer');
  for (const [ns, dev] of [[app, 'tg-app'], [peer, 'tg-peer']] as const) {
    ip('-n', ns, 'link', 'set', dev, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  const { spawn } = await import('node:child_process');
  const listener = spawn('ip', ['netns', 'exec', app, process.execPath, '-e', "require('net').createServer((s) => s.end()).listen(11019, '0.0.0.0', () => console.log('up'))"], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => listener.kill('SIGKILL'));
  await new Promise<void>((resolve) => listener.stdout?.once('data', () => resolve()));

  const connect = (ns: string, host: string): string =>
    spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', `
      const s = require('net').connect(11019, '${host}');
      s.setTimeout(1500, () => { console.log('no answer'); process.exit(0); });
      s.on('connect', () => { console.log('connected'); process.exit(0); });
      s.on('error', (e) => { console.log(e.code); process.exit(0); });`], { encoding: 'utf8' }).stdout.trim();

  t.equal(connect(peer, '192.0.2.2'), 'connected', 'without the guard the app is reachable from the wire');
  const guard = spawnSync('ip', ['netns', 'exec', app, path.join(ROOT, 'deploy/entrypoint/guard-local-ports.sh'), '11019', '56767'], { encoding: 'utf8' });
  t.equal(guard.status, 0, guard.stderr);
  t.equal(connect(peer, '192.0.2.2'), 'no answer', 'with the guard, SYNs from the wire are dropped');
  t.equal(connect(app, '127.0.0.1'), 'connected', 'loopback (the terminator sidecar) still connects');
  const again = spawnSync('ip', ['netns', 'exec', app, path.join(ROOT, 'deploy/entrypoint/guard-local-ports.sh'), '11019'], { encoding: 'utf8' });
  t.equal(again.status, 0, 're-running replaces the table');
  const rules = spawnSync('ip', ['netns', 'exec', app, 'nft', 'list', 'table', 'inet', 'tcpao_guard'], { encoding: 'utf8' }).stdout;
  t.match(rules, /tcp dport 11019 drop/);
  t.notMatch(rules, /56767/, 'the earlier table is gone');
});
