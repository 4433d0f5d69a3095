/**
 * deploy/containerlab/tcpao-bmp.clab.yml against containerlab's vendored JSON
 * schema, plus what the schema cannot see: endpoints name declared nodes,
 * names and addresses agree with topology.env, the key comes from the host
 * environment, and each node's env renders into a valid sidecar config.
 */
import t from 'tap';
import Ajv from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { renderTemplate } from '../../src/deploy/render.js';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLAB_DIR = path.join(ROOT, 'deploy', 'containerlab');
const TOPOLOGY_FILE = path.join(CLAB_DIR, 'tcpao-bmp.clab.yml');
const SCHEMA_FILE = path.join(CLAB_DIR, 'schema', 'clab.schema.json');

type Doc = Record<string, any>;
type Topology = Readonly<Record<string, string>>;

function readTopologyEnv(): Topology {
  const values: Record<string, string> = {};
  for (const line of readFileSync(path.join(CLAB_DIR, 'topology.env'), 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match !== null) values[match[1] as string] = match[2] as string;
  }
  return values;
}

const topo = readTopologyEnv();
const source = readFileSync(TOPOLOGY_FILE, 'utf8');
const doc = YAML.parse(source, { uniqueKeys: true }) as Doc;

const ajv = new Ajv({ strict: false, allErrors: true });
const validateSchema = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);

function schemaErrors(candidate: unknown): string[] {
  return validateSchema(candidate) ? [] : (validateSchema.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** containerlab's ${VAR} / ${VAR:=default} expansion from the host environment. */
function expand(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}/g, (_all, name: string, fallback: string | undefined) => env[name] ?? fallback ?? '');
}

function effectiveEnv(candidate: Doc, node: string): Record<string, string> {
  const spec = candidate.topology.nodes[node] as Doc;
  const kind = (candidate.topology.kinds?.[spec.kind]?.env ?? {}) as Record<string, string>;
  return { ...kind, ...((spec.env ?? {}) as Record<string, string>) };
}

const SECRET_NAME = /KEY|SECRET|PASS|TOKEN/;
const HOST_ENV_REFERENCE = /^\$\{[A-Z_][A-Z0-9_]*\}$/;

/** What the schema misses; an empty list means the topology is consistent. */
function semanticProblems(candidate: Doc): string[] {
  const problems: string[] = [];
  const nodes = (candidate.topology?.nodes ?? {}) as Record<string, Doc>;
  const declared = new Set(Object.keys(nodes));
  const links = (candidate.topology?.links ?? []) as Doc[];
  for (const [index, link] of links.entries()) {
    const endpoints = (link.endpoints ?? []) as string[];
    if (endpoints.length !== 2) problems.push(`link ${index}: expected 2 endpoints`);
    for (const endpoint of endpoints) {
      const match = /^([^:\s]+):([^:\s]+)$/.exec(endpoint);
      if (match === null) problems.push(`link ${index}: endpoint ${JSON.stringify(endpoint)} is not node:interface`);
      else if (!declared.has(match[1] as string)) problems.push(`link ${index}: endpoint ${endpoint} names an undeclared node`);
    }
  }
  for (const name of declared) {
    for (const [variable, value] of Object.entries(effectiveEnv(candidate, name))) {
      if (variable !== 'KEY_ID' && SECRET_NAME.test(variable) && !HOST_ENV_REFERENCE.test(String(value))) {
        problems.push(`${name}: ${variable} must come from the host environment as \${${variable}}, not a literal`);
      }
    }
  }
  return problems;
}

t.test('the vendored schema is the recorded one', async (t) => {
  const readme = readFileSync(path.join(CLAB_DIR, 'schema', 'README.md'), 'utf8');
  t.match(readme, /39ff2b7ccce20f3c4610fcbd1fc030582f4499c1/, 'source commit noted');
  const { createHash } = await import('node:crypto');
  const digest = createHash('sha256').update(readFileSync(SCHEMA_FILE)).digest('hex');
  t.match(readme, digest, 'the README records the sha256 of the vendored file');
});

t.test('the topology validates against the containerlab schema, as written and expanded', async (t) => {
  t.same(schemaErrors(doc), []);
  const expanded = YAML.parse(expand(source, { TCPAO_KEY: 'not-a-real-key' })) as Doc;
  t.same(schemaErrors(expanded), []);
  t.same(semanticProblems(doc), []);
});

t.test('the schema and the semantic checks catch broken topologies', async (t) => {
  const clone = (): Doc => structuredClone(doc);
  const wrongKind = clone();
  wrongKind.topology.nodes.gobgp.kind = 'linx';
  t.not(schemaErrors(wrongKind).length, 0, 'unknown kind');
  const typo = clone();
  typo.topology.nodes.gobmp.imagee = 'x';
  t.not(schemaErrors(typo).length, 0, 'unknown node field');
  const emptyExec = clone();
  emptyExec.topology.nodes.gobmp.exec = [];
  t.not(schemaErrors(emptyExec).length, 0, 'empty exec list');

  const undeclared = clone();
  undeclared.topology.links[0].endpoints = ['gobgp:eth1', 'collector:eth1'];
  t.same(schemaErrors(undeclared), [], 'the schema alone accepts an undeclared node');
  t.match(semanticProblems(undeclared), [/undeclared node/]);
  const noInterface = clone();
  noInterface.topology.links[0].endpoints = ['gobgp:eth1', 'gobmp'];
  t.match(semanticProblems(noInterface), [/not node:interface/]);
  const literalKey = clone();
  literalKey.topology.nodes.gobmp.env.TCPAO_KEY = 'REPLACE_WITH_SHARED_SECRET';
  t.match(semanticProblems(literalKey), [/TCPAO_KEY must come from the host environment/]);
});

t.test('names, link and addresses agree with topology.env', async (t) => {
  const initiator = topo.INITIATOR_NODE as string;
  const terminator = topo.TERMINATOR_NODE as string;
  const iface = topo.WIRE_IFACE as string;
  t.same(Object.keys(doc.topology.nodes).sort(), [initiator, terminator].sort());
  t.same(doc.topology.links, [{ endpoints: [`${initiator}:${iface}`, `${terminator}:${iface}`] }]);

  const sides = [
    [initiator, topo.INITIATOR_WIRE_IPV4, topo.INITIATOR_WIRE_IPV6],
    [terminator, topo.TERMINATOR_WIRE_IPV4, topo.TERMINATOR_WIRE_IPV6],
  ] as const;
  for (const [node, ipv4, ipv6] of sides) {
    const exec = doc.topology.nodes[node].exec as string[];
    t.ok(exec.includes(`ip addr add ${ipv4}/${topo.WIRE_IPV4_PREFIX} dev ${iface}`), `${node}: IPv4 ${ipv4}`);
    t.ok(exec.some((line) => line.startsWith(`ip -6 addr add ${ipv6}/${topo.WIRE_IPV6_PREFIX} dev ${iface}`)), `${node}: IPv6 ${ipv6}`);
    t.ok(exec.includes(`ip link set ${iface} up`), `${node}: ${iface} up`);
  }

  const initiatorEnv = effectiveEnv(doc, initiator);
  t.equal(initiatorEnv.LISTEN_PLAIN, topo.GOBGP_LOCAL_BMP_OUT);
  t.equal(initiatorEnv.REMOTE_AO, `${topo.TERMINATOR_WIRE_IPV4}:${topo.WIRE_PORT}`);
  t.equal(initiatorEnv.PEER_IP, topo.TERMINATOR_WIRE_IPV4);
  const terminatorEnv = effectiveEnv(doc, terminator);
  t.equal(terminatorEnv.FORWARD_PLAIN, topo.GOBMP_LOCAL_BMP_IN);
  t.equal(terminatorEnv.LISTEN_AO, `0.0.0.0:${topo.WIRE_PORT}`);
  t.equal(terminatorEnv.PEER_IP, topo.INITIATOR_WIRE_IPV4);
  t.equal(initiatorEnv.KEY_ID, terminatorEnv.KEY_ID, 'both sides use the same key id');
});

t.test('the key comes from the host environment and nothing key-like is written in the file', async (t) => {
  for (const node of Object.keys(doc.topology.nodes)) t.equal(effectiveEnv(doc, node).TCPAO_KEY, '${TCPAO_KEY}', `${node}: TCPAO_KEY=\${TCPAO_KEY}`);
  const scalars: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') Object.entries(value).forEach(([k, v]) => (scalars.push(k), walk(v)));
    else scalars.push(String(value));
  };
  walk(doc);
  const blobs = scalars.filter((value) => /\b[0-9a-fA-F]{16,}\b/.test(value) || /^[A-Za-z0-9+/_=-]{20,}$/.test(value));
  t.same(blobs, [], 'no value looks like key material (long hex or base64)');
  t.notMatch(source, /REPLACE_WITH|changeme|secret:/i, 'no placeholder secret');
});

t.test("each node's env renders into a valid config for its role", async (t) => {
  for (const [node, role] of [
    [topo.INITIATOR_NODE as string, 'initiator'],
    [topo.TERMINATOR_NODE as string, 'terminator'],
  ] as const) {
    const template = readFileSync(path.join(ROOT, 'deploy', 'config', `${role}.toml.tmpl`), 'utf8');
    const env = effectiveEnv(doc, node);
    t.doesNotThrow(() => renderTemplate(template, env, role), `${node} renders as ${role}`);
  }
});

t.test('images, binds and the port guard', async (t) => {
  const pinned = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'images', 'images.json'), 'utf8')) as {
    registry: string;
    images: { name: string; tag: string; role: string }[];
  };
  const roleOf: Record<string, string> = { [topo.INITIATOR_NODE as string]: 'initiator', [topo.TERMINATOR_NODE as string]: 'terminator' };
  for (const [node, spec] of Object.entries(doc.topology.nodes as Record<string, Doc>)) {
    const fallback = /^\$\{[A-Z_]+:=([^}]+)\}$/.exec(spec.image as string)?.[1] ?? (spec.image as string);
    t.match(fallback, /:\d+\.\d+\.\d+$/, `${node}: image pinned to a version tag (${fallback})`);
    const image = pinned.images.find((entry) => entry.role === roleOf[node]);
    t.equal(fallback, `${pinned.registry}/${image?.name}:${image?.tag}`, `${node}: the image of deploy/images/images.json`);
    for (const bind of (spec.binds ?? []) as string[]) {
      const [hostPath, , mode] = bind.split(':');
      t.ok(existsSync(path.join(CLAB_DIR, hostPath as string)), `${node}: bind source ${hostPath} exists`);
      t.equal(mode, 'ro', `${node}: ${hostPath} is bound read-only`);
    }
  }
  t.ok(doc.mgmt?.['ipv4-subnet'], 'pinned management subnet');
  const terminatorExec = doc.topology.nodes[topo.TERMINATOR_NODE as string].exec as string[];
  const guard = terminatorExec.find((line) => line.includes('guard-local-ports.sh'));
  const forwardPort = (topo.GOBMP_LOCAL_BMP_IN as string).split(':').pop() as string;
  t.ok(guard?.split(' ').includes(forwardPort), `the terminator node guards gobmp's port ${forwardPort}`);
  t.ok(terminatorExec.indexOf(guard as string) < terminatorExec.findIndex((line) => line.startsWith('ip addr add')), 'the guard is in place before eth1 gets its address');
  t.ok(existsSync(path.join(ROOT, 'deploy', 'entrypoint', 'guard-local-ports.sh')), 'the guard script ships in deploy/entrypoint');
});
