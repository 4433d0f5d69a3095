/**
 * deploy/compose/docker-compose.yml, the single-host Docker lab (spec 11.1):
 * Debian's docker-compose accepts it, the terminator starts first, the
 * initiator dials the terminator's fixed address, addresses agree with
 * topology.env, the key arrives only as a file secret, and each service's
 * environment renders into a valid sidecar config.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { renderTemplate } from '../../src/deploy/render.js';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const COMPOSE_FILE = path.join(ROOT, 'deploy', 'compose', 'docker-compose.yml');
const COMPOSE = '/usr/bin/docker-compose';

type Doc = Record<string, any>;

function topologyEnv(): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of readFileSync(path.join(ROOT, 'deploy', 'containerlab', 'topology.env'), 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match !== null) values[match[1] as string] = match[2] as string;
  }
  return values;
}

const topo = topologyEnv();
const doc = YAML.parse(readFileSync(COMPOSE_FILE, 'utf8'), { uniqueKeys: true }) as Doc;
const pinned = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'images', 'images.json'), 'utf8')) as {
  registry: string;
  images: { name: string; tag: string; role: 'initiator' | 'terminator' }[];
};
const services = doc.services as Record<string, Doc>;
const initiator = services[topo.INITIATOR_NODE as string] as Doc;
const terminator = services[topo.TERMINATOR_NODE as string] as Doc;

t.test("Debian's docker-compose accepts the file", { skip: existsSync(COMPOSE) ? false : `${COMPOSE} is not installed` }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tcpao-compose-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'tcpao.key');
  writeFileSync(keyFile, 'not-a-real-key\n', { mode: 0o600 });
  const result = spawnSync(COMPOSE, ['-f', COMPOSE_FILE, 'config'], {
    encoding: 'utf8',
    env: { ...process.env, TCPAO_COMPOSE_KEY_FILE: keyFile },
  });
  t.equal(result.status, 0, `docker-compose config exits 0 (${result.stderr.trim()})`);
  const resolved = YAML.parse(result.stdout) as Doc;
  t.equal(resolved.secrets?.tcpao_key?.file, keyFile, 'the secret file comes from TCPAO_COMPOSE_KEY_FILE');
});

t.test('two services: the terminator first, then the initiator', async (t) => {
  t.same(Object.keys(services).sort(), [topo.INITIATOR_NODE, topo.TERMINATOR_NODE].sort());
  t.same(initiator.depends_on, [topo.TERMINATOR_NODE], 'the initiator waits for the terminator');
  t.notOk('depends_on' in terminator, 'the terminator depends on nothing');
});

t.test('images default to the pinned tags of images.json', async (t) => {
  for (const [service, role] of [
    [initiator, 'initiator'],
    [terminator, 'terminator'],
  ] as const) {
    const entry = pinned.images.find((image) => image.role === role);
    const fallback = /^\$\{[A-Z_]+:-([^}]+)\}$/.exec(service.image as string)?.[1];
    t.equal(fallback, `${pinned.registry}/${entry?.name}:${entry?.tag}`, `${role}: ${service.image}`);
  }
});

t.test('a user-defined bridge with fixed addresses from topology.env; no published port', async (t) => {
  const network = doc.networks['bmp-wire'] as Doc;
  t.equal(network.driver, 'bridge');
  const subnet = network.ipam.config[0].subnet as string;
  t.equal(subnet, `${(topo.INITIATOR_WIRE_IPV4 as string).replace(/\.\d+$/, '.0')}/${topo.WIRE_IPV4_PREFIX}`);
  t.equal(initiator.networks['bmp-wire'].ipv4_address, topo.INITIATOR_WIRE_IPV4);
  t.equal(terminator.networks['bmp-wire'].ipv4_address, topo.TERMINATOR_WIRE_IPV4);
  t.notOk([initiator, terminator].some((s) => 'ports' in s || 'network_mode' in s), 'no port is published and no host network is used');
  t.equal(initiator.environment.REMOTE_AO, `${topo.TERMINATOR_WIRE_IPV4}:${topo.WIRE_PORT}`, 'REMOTE_AO is the terminator');
  t.equal(initiator.environment.PEER_IP, topo.TERMINATOR_WIRE_IPV4);
  t.equal(terminator.environment.PEER_IP, topo.INITIATOR_WIRE_IPV4);
  t.equal(terminator.environment.LISTEN_AO, `0.0.0.0:${topo.WIRE_PORT}`);
});

t.test('the key is a file secret, never an environment value', async (t) => {
  t.match(doc.secrets.tcpao_key.file, /^\$\{TCPAO_COMPOSE_KEY_FILE:-[^}]+\}$/);
  for (const service of [initiator, terminator]) {
    t.same(service.secrets, ['tcpao_key']);
    t.equal(service.environment.TCPAO_KEY_FILE, '/run/secrets/tcpao_key');
    t.notOk('TCPAO_KEY' in service.environment, 'no TCPAO_KEY in the environment');
    t.equal(service.stop_grace_period, '15s');
  }
  t.match(readFileSync(path.join(ROOT, '.gitignore'), 'utf8'), /^deploy\/compose\/tcpao\.key$/m, 'the default key file is git-ignored');
});

t.test("each service's environment renders into its role's config", async (t) => {
  for (const [service, role] of [
    [initiator, 'initiator'],
    [terminator, 'terminator'],
  ] as const) {
    const template = readFileSync(path.join(ROOT, 'deploy', 'config', `${role}.toml.tmpl`), 'utf8');
    t.doesNotThrow(() => renderTemplate(template, service.environment as Record<string, string>, role), role);
  }
});
