/**
 * scripts/docker-engine with a state directory of its own: the engine keeps
 * its data root and sockets there (or, for a long path, under a short /run
 * directory), never touches the host's firewall or makes docker0, and stop
 * waits until it is gone.
 */
import t from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const ENGINE = path.join(ROOT, 'scripts', 'docker-engine');
const SUN_PATH_MAX = 107;

function engine(home: string, args: readonly string[]): SpawnSyncReturns<string> {
  return spawnSync(ENGINE, args, { encoding: 'utf8', timeout: 180_000, env: { ...process.env, TCPAO_DOCKER_HOME: home } });
}

function socketOf(home: string): string {
  const match = /^export DOCKER_HOST=unix:\/\/(\S+)$/m.exec(engine(home, ['env']).stdout);
  if (match === null) throw new Error('docker-engine env printed no DOCKER_HOST');
  return match[1] as string;
}

function iptablesRules(): string {
  const save = spawnSync('iptables-save', [], { encoding: 'utf8' });
  return save.status === 0 ? save.stdout.split('\n').filter((line) => !line.startsWith('#')).join('\n') : `iptables-save failed: ${save.stderr}`;
}

t.test('usage: --help exits 0, an unknown command exits 2', async (t) => {
  const help = spawnSync(ENGINE, ['--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: scripts\/docker-engine COMMAND/m);
  const wrong = spawnSync(ENGINE, ['launch'], { encoding: 'utf8' });
  t.equal(wrong.status, 2);
  t.match(wrong.stderr, /^Usage:/m);
});

t.test('the socket stays within the unix socket path limit', async (t) => {
  const short = '/tmp/tcpao-engine-short';
  t.equal(socketOf(short), `${short}/run/docker.sock`, 'a short state directory keeps the socket inside it');
  const long = `/tmp/${'d'.repeat(90)}`;
  const socket = socketOf(long);
  t.match(socket, /^\/run\/tcpao-dk-[0-9a-f]{8}\/docker\.sock$/, 'a long one moves the exec root to a short /run directory');
  t.ok(`${path.dirname(socket)}/containerd/containerd-debug.sock`.length <= SUN_PATH_MAX, 'the longest socket under it fits');
  t.not(socketOf(`/tmp/${'e'.repeat(90)}`), socket, 'two long state directories get two exec roots');
});

const root = process.getuid?.() === 0;
t.test('an engine of its own: own data root, no firewall change, no docker0, stop waits', { skip: root ? false : 'dockerd needs root' }, async (t) => {
  const home = mkdtempSync('/tmp/tcpao-engine-');
  const rulesBefore = iptablesRules();
  const docker0Before = existsSync('/sys/class/net/docker0');
  t.teardown(() => {
    engine(home, ['stop']);
    rmSync(home, { recursive: true, force: true });
  });
  const start = engine(home, ['start']);
  t.equal(start.status, 0, `start exits 0 (${start.stderr.trim()})`);
  const pid = readFileSync(path.join(home, 'dockerd.pid'), 'utf8').trim();
  t.match(pid, /^\d+$/, 'a pid file in the state directory');

  const socket = socketOf(home);
  const docker = (args: readonly string[]): SpawnSyncReturns<string> =>
    spawnSync('/usr/bin/docker', args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: `unix://${socket}` } });
  t.equal(docker(['info', '--format', '{{.DockerRootDir}}']).stdout.trim(), path.join(home, 'data'), 'the data root is in the state directory');
  t.notMatch(docker(['network', 'ls', '--format', '{{.Name}}']).stdout, /^bridge$/m, 'no default bridge network (--bridge=none)');
  t.equal(existsSync('/sys/class/net/docker0'), docker0Before, 'no docker0 interface made');
  t.equal(iptablesRules(), rulesBefore, 'the host firewall is unchanged');
  t.equal(engine(home, ['start']).status, 0, 'a second start finds it running');
  t.match(engine(home, ['status']).stdout, new RegExp(`^running: pid ${pid}, unix://${socket}`, 'm'));

  const stop = engine(home, ['stop']);
  t.equal(stop.status, 0, 'stop exits 0');
  t.notOk(existsSync(`/proc/${pid}`), 'dockerd is gone when stop returns');
  const status = engine(home, ['status']);
  t.equal(status.status, 3, 'status exits 3 when not running');
  t.match(status.stdout, /^not running/m);
});
