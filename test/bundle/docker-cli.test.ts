import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerCli } from '../../src/bundle/image-tool.js';
import { scratch } from './fixture.js';

const ID = `sha256:${'c'.repeat(64)}`;
const PUSHED = `sha256:${'d'.repeat(64)}`;

/** A stand-in docker executable that logs its argv (one JSON array per line) and mimics the real output. */
function fakeDocker(dir: string): { path: string; calls: () => string[][] } {
  const log = join(dir, 'calls.jsonl');
  const path = join(dir, 'docker');
  writeFileSync(
    path,
    `#!${process.execPath}
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify(args) + '\\n');
const fail = (msg) => { process.stderr.write(msg + '\\n'); process.exit(1); };
if (args.some((a) => a.includes('daemon-down'))) fail('Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?');
switch (args[0]) {
  case 'save': fs.writeFileSync(args[2], 'archive of ' + args[3]); break;
  case 'load': process.stdout.write('Loaded image: ' + fs.readFileSync(args[2], 'utf8').replace('archive of ', '') + '\\n'); break;
  case 'image':
    if (args[4] !== 'known/img:1') fail('Error response from daemon: No such image: ' + args[4]);
    process.stdout.write(JSON.stringify({ Id: ${JSON.stringify(ID)}, RepoDigests: ['known/img@${PUSHED}'] }) + '\\n');
    break;
  case 'push': process.stdout.write('The push refers to repository [x]\\n1: digest: ${PUSHED} size: 527\\n'); break;
  case 'tag': case 'pull': break;
  default: fail('unknown command ' + args[0]);
}
`,
  );
  chmodSync(path, 0o755);
  return {
    path,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]) : []),
  };
}

t.test('DockerCli passes argument arrays to docker and parses its output', async (t) => {
  const dir = scratch(t, 'tcpao-fakedocker-');
  const docker = fakeDocker(dir);
  const cli = new DockerCli(docker.path);

  // A path a shell would mangle reaches docker byte for byte.
  const archive = join(dir, 'with space $(touch pwned) ;x.tar');
  await cli.save('known/img:1', archive);
  t.equal(readFileSync(archive, 'utf8'), 'archive of known/img:1');
  t.notOk(existsSync(join(dir, 'pwned')), 'no shell ran');
  t.same(await cli.load(archive), ['known/img:1']);
  t.same(await cli.inspect('known/img:1'), { id: ID, repoDigests: [`known/img@${PUSHED}`] });
  t.equal(await cli.inspect('absent/img:1'), null, '"No such image" means absent, not an error');
  await cli.tag('known/img:1', 'registry.lab.internal/tcpao/img:1');
  t.equal(await cli.push('registry.lab.internal/tcpao/img:1'), PUSHED);
  await cli.pull('known/img:1');

  t.same(docker.calls(), [
    ['save', '--output', archive, 'known/img:1'],
    ['load', '--input', archive],
    ['image', 'inspect', '--format', '{{json .}}', 'known/img:1'],
    ['image', 'inspect', '--format', '{{json .}}', 'absent/img:1'],
    ['tag', 'known/img:1', 'registry.lab.internal/tcpao/img:1'],
    ['push', 'registry.lab.internal/tcpao/img:1'],
    ['pull', '--quiet', 'known/img:1'],
  ]);
});

t.test('DockerCli failures are coded one-liners', async (t) => {
  const dir = scratch(t, 'tcpao-fakedocker-');
  const cli = new DockerCli(fakeDocker(dir).path);
  await t.rejects(cli.inspect('daemon-down/img:1'), {
    code: 'ERR_TCPAO_BUNDLE_IMAGE_TOOL',
    message: 'docker image inspect failed: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
  });
  await t.rejects(cli.save('daemon-down/img:1', join(dir, 'x.tar')), { code: 'ERR_TCPAO_BUNDLE_IMAGE_TOOL', message: /^docker save failed: Cannot connect/ });
  await t.rejects(new DockerCli(join(dir, 'no-such-docker')).load(join(dir, 'x.tar')), {
    code: 'ERR_TCPAO_BUNDLE_IMAGE_TOOL',
    message: /is not on PATH; install the Docker CLI/,
  });
});

function engineSkipReason(): string | false {
  if (spawnSync('docker', ['--version'], { encoding: 'utf8' }).status !== 0) return 'the docker CLI is not installed on this host';
  if (spawnSync('docker', ['info'], { encoding: 'utf8' }).status === 0) return 'a Docker engine runs here; this case is about hosts without one';
  return false;
}

t.test('the real docker CLI without an engine: an error, never "image absent"', { skip: engineSkipReason() }, async (t) => {
  await t.rejects(new DockerCli().inspect('ghcr.io/tcpao-proxy/gobmp-tls-tcpao:0.1.0'), {
    code: 'ERR_TCPAO_BUNDLE_IMAGE_TOOL',
    message: /docker image inspect failed: .*daemon/i,
  });
});
