/**
 * deploy/containerlab/tcpao-bmp.clab.yml deployed for real (deployment spec
 * 11.2): containerlab built from its Go module (scripts/build-apps), the two
 * built images, the project's Docker engine inside the kernel lab. The route
 * reaches gobmp, the minimum log checks hold, a wrong key fails closed, and
 * destroy leaves nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { parseDocument } from 'yaml';

import {
  builtImages,
  containerJsonLines,
  containerLogs,
  containerState,
  ensureImagesLoaded,
  pollEngine,
  startEngine,
  type Engine,
  imageSuite,
} from '../helpers/docker.js';
import { keyEncodings, REPO } from '../helpers/lab.js';

const LAB_NAME = 'tcpao-bmp';
const INITIATOR = `clab-${LAB_NAME}-gobgp`;
const TERMINATOR = `clab-${LAB_NAME}-gobmp`;
const MGMT_NETWORK = 'tcpao-bmp-mgmt';
const ROUTE = '203.0.113.0/24';
const STEP_MS = 180_000;
const KEY = '0d1c2b3a49586776a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0ffee';
const WRONG_KEY = 'f2e3d4c5b6a798891a2b3c4d5e6f70818f7e6d5c4b3a29180716253443526170';

imageSuite(true, (archivePath, appsBin) => suite(archivePath, join(appsBin, 'containerlab')));

function suite(archivePath: string, containerlab: string): void {
  let engine: Engine;
  const scratch = mkdtempSync(join(tmpdir(), 'tcpao-clab-'));
  t.before(() => {
    engine = startEngine();
    const images = builtImages();
    ensureImagesLoaded(engine, archivePath, [images.initiator, images.terminator]);
  });
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

  /** A copy of the shipped topology, optionally with the initiator given another key. */
  function topologyCopy(dir: string, initiatorKeyOverride: boolean): string {
    cpSync(join(REPO, 'deploy', 'containerlab'), dir, { recursive: true });
    const file = join(dir, 'tcpao-bmp.clab.yml');
    if (initiatorKeyOverride) {
      const document = parseDocument(readFileSync(file, 'utf8'));
      document.setIn(['topology', 'nodes', 'gobgp', 'env', 'TCPAO_KEY'], '${TCPAO_WRONG_KEY}');
      writeFileSync(file, document.toString());
    }
    return file;
  }

  /**
   * Runs containerlab with the engine's DOCKER_HOST, in a mount namespace of
   * its own whose /etc/hosts and ssh_config.d are private copies: the lab's /
   * is the host's, and containerlab writes both.
   */
  function clab(args: readonly string[], env: NodeJS.ProcessEnv): { status: number | null; output: string } {
    const script = [
      'set -e',
      'private="$(mktemp -d)"',
      'cp /etc/hosts "$private/hosts" && mount --bind "$private/hosts" /etc/hosts',
      'mkdir -p /etc/ssh/ssh_config.d "$private/ssh" && mount --bind "$private/ssh" /etc/ssh/ssh_config.d',
      'exec "$@"',
    ].join('\n');
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script, 'clab', containerlab, ...args], {
      encoding: 'utf8',
      env: { ...engine.env, ...env },
      // A deploy of two nodes takes about a minute under emulation; a hang must fail this case, not the lab run.
      timeout: 300_000,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  const labContainers = (): string[] =>
    engine
      .docker(['ps', '-a', '--filter', `label=containerlab=${LAB_NAME}`, '--format', '{{.Names}}'])
      .stdout.split('\n')
      .filter((name) => name.length > 0);

  async function deployAndInject(tt: Test, file: string, env: NodeJS.ProcessEnv): Promise<void> {
    const deployed = clab(['deploy', '-t', file, '--reconfigure'], env);
    tt.equal(deployed.status, 0, `containerlab deploy succeeded${deployed.status === 0 ? '' : `:\n${deployed.output}`}`);
    tt.teardown(() => {
      clab(['destroy', '-t', file, '--cleanup'], env);
    });
    for (const name of [TERMINATOR, INITIATOR]) {
      const up = await pollEngine(
        () => containerJsonLines(engine, name).some((line) => line['event'] === 'listening' || line['event'] === 'listener_ao_installed'),
        STEP_MS,
      );
      tt.ok(up, `${name} is listening${up ? '' : `:\n${containerLogs(engine, name)}`}`);
    }
    const added = await pollEngine(
      () => engine.docker(['exec', INITIATOR, 'gobgp', 'global', 'rib', 'add', ROUTE, '-a', 'ipv4'], { allowFailure: true }).status === 0,
      STEP_MS,
    );
    tt.ok(added, `gobgp global rib add ${ROUTE}`);
  }

  t.test('deploy: the route reaches gobmp over the TCP-AO link, and the spec 11.2 log checks hold', async (tt) => {
    const file = topologyCopy(join(scratch, 'good'), false);
    await deployAndInject(tt, file, { TCPAO_KEY: KEY });
    tt.ok(
      await pollEngine(() => containerLogs(engine, TERMINATOR).includes('"203.0.113.0"'), STEP_MS),
      `gobmp dumped ${ROUTE}`,
    );
    tt.ok(containerJsonLines(engine, TERMINATOR).some((line) => line['event'] === 'listener_ao_installed'), 'terminator: listener AO policies installed');
    tt.ok(containerJsonLines(engine, INITIATOR).some((line) => line['event'] === 'outbound_ao_applied'), 'initiator: outbound AO policy applied before connect');
    tt.ok(containerJsonLines(engine, TERMINATOR).some((line) => line['event'] === 'relay_started'), 'traffic forwarded end to end');
    const encodings = keyEncodings(KEY);
    for (const name of [INITIATOR, TERMINATOR]) {
      const logs = containerLogs(engine, name);
      tt.same(encodings.filter((encoding) => logs.includes(encoding)), [], `no key byte in the logs of ${name}`);
    }
  });

  t.test('wrong key on one node: fails closed, nothing reaches gobmp', async (tt) => {
    const file = topologyCopy(join(scratch, 'wrong'), true);
    await deployAndInject(tt, file, { TCPAO_KEY: KEY, TCPAO_WRONG_KEY: WRONG_KEY });
    const refused = await pollEngine(
      () => containerJsonLines(engine, INITIATOR).some((line) => line['reason'] === 'wire_connect_timeout'),
      STEP_MS,
    );
    tt.ok(refused, 'the initiator logged wire_connect_timeout');
    tt.equal(containerJsonLines(engine, TERMINATOR).filter((line) => line['event'] === 'relay_started').length, 0, 'nothing relayed');
    tt.notOk(containerLogs(engine, TERMINATOR).includes('"203.0.113.0"'), 'gobmp never saw the route');
    tt.ok(containerState(engine, TERMINATOR).running, 'the terminator keeps serving');
  });

  t.test('destroy --cleanup leaves nothing behind', async (tt) => {
    const file = topologyCopy(join(scratch, 'destroy'), false);
    const deployed = clab(['deploy', '-t', file, '--reconfigure'], { TCPAO_KEY: KEY });
    tt.equal(deployed.status, 0, 'deployed');
    const destroyed = clab(['destroy', '-t', file, '--cleanup'], { TCPAO_KEY: KEY });
    tt.equal(destroyed.status, 0, `containerlab destroy succeeded${destroyed.status === 0 ? '' : `:\n${destroyed.output}`}`);
    tt.same(labContainers(), [], 'no container of the lab is left');
    const networks = engine.docker(['network', 'ls', '--format', '{{.Name}}']).stdout.split('\n');
    tt.notOk(networks.includes(MGMT_NETWORK), `the ${MGMT_NETWORK} network is gone`);
    tt.notOk(existsSync(join(scratch, 'destroy', `clab-${LAB_NAME}`)), 'the lab directory is gone');
    tt.notOk(readFileSync('/etc/hosts', 'utf8').includes(`clab-${LAB_NAME}`), '/etc/hosts was never touched');
  });
}
