/**
 * /status and /metrics on the host, over a fake binding: the snapshot reports
 * what the sockets report, /metrics parses as Prometheus text and agrees with
 * /status, label values are escaped, and the HTTP listener serves both pages.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';

import pino from 'pino';
import t from 'tap';

import { ConfigError, loadConfigText } from '../../src/config/load.js';
import { startObservability } from '../../src/observability/http.js';
import { renderFamilies, renderMetrics } from '../../src/observability/metrics.js';
import { snapshot, type StatusSource } from '../../src/observability/status.js';
import type { ReloadRecord } from '../../src/rotation/controller.js';
import { parseMetrics, sampleValue } from '../helpers/prometheus.js';
import { FakeKernelBinding } from '../helpers/fake-bindings.js';

const quiet = pino({ level: 'silent' }, new Writable({ write: (_chunk, _encoding, done) => done() }));

function source(fake: FakeKernelBinding, lastReload?: ReloadRecord): StatusSource {
  const listenerFd = fake.socket(true, [{ sendId: 1, recvId: 1 }, { sendId: 2, recvId: 2 }]);
  const first = fake.socket(false, [{ sendId: 1, recvId: 1, good: 40n }, { sendId: 2, recvId: 2, good: 2n }], 2, 2);
  const second = fake.socket(false, [{ sendId: 2, recvId: 2, good: 9n }], 2, 2);
  const startedAt = Date.now() - 5_000;
  return {
    mode: 'terminator',
    startedAt,
    configSource: () => '/etc/tcpao/terminator.toml',
    generation: () => 3,
    lastReload: () => lastReload,
    reloadCounts: () => ({ applied: 2, failed: 1 }),
    listeners: () => [{ kind: 'ao', address: '10.0.0.2:1790', fd: listenerFd }],
    connections: () => [
      { id: 1, peer: '10.0.0.1:40000', wirePeer: '10.0.0.1', fd: first, startedAt, bytes: () => ({ clientToUpstream: 1_000, upstreamToClient: 250 }) },
      { id: 2, peer: '10.0.0.1:40002', wirePeer: '10.0.0.1', fd: second, startedAt, bytes: () => ({ clientToUpstream: 7, upstreamToClient: 0 }) },
    ],
    pendingConnections: () => 0,
    refusals: () => new Map([['max_connections', 0], ['max_connections_per_peer', 3], ['unknown_peer', 1]]),
    acceptErrors: () => 2,
    pendingRemovals: () => new Map([[1, [{ sendId: 1, recvId: 1, removal: 'deprecated' as const, waitingFor: 'peer_not_moved' as const }]]]),
  };
}

const RELOAD: ReloadRecord = {
  at: '2026-11-22T01:00:00.000Z',
  result: 'applied',
  generation: 3,
  problems: [],
  keysAdded: 2,
  keysRemoved: 1,
  pendingRemovals: 1,
  restartNeeded: [],
};

t.test('the snapshot reports each socket as the kernel does', async (t) => {
  const fake = new FakeKernelBinding();
  const status = snapshot(source(fake, RELOAD), fake.binding());
  t.equal(status.config.generation, 3);
  t.equal(status.config.lastReload?.result, 'applied');
  t.equal(status.connections.length, 2);
  const first = status.connections[0];
  t.equal(first?.currentKey, 2);
  t.equal(first?.rnextKey, 2);
  t.same(first?.keys.map((key) => [key.sendId, key.pktGood, key.isCurrent]), [[1, 40, false], [2, 2, true]]);
  t.equal(first?.ao?.pktGood, 10, 'socket counters from TCP_AO_INFO');
  t.same(first?.pendingRemovals.map((entry) => entry.waitingFor), ['peer_not_moved']);
  t.equal(status.totals.bytesClientToUpstream, 1_007);
  t.equal(status.totals.pendingKeyRemovals, 1);
  t.same(status.listeners[0]?.keys.map((key) => key.sendId), [1, 2]);
});

t.test('/metrics parses and agrees with /status', async (t) => {
  const fake = new FakeKernelBinding();
  const status = snapshot(source(fake, RELOAD), fake.binding());
  const families = parseMetrics(renderMetrics(status));
  t.equal(sampleValue(families, 'tcpao_proxy_config_generation'), 3);
  t.equal(sampleValue(families, 'tcpao_proxy_reloads_total', { result: 'failed' }), 1);
  t.equal(sampleValue(families, 'tcpao_proxy_last_reload_timestamp_seconds'), Date.parse(RELOAD.at) / 1_000);
  t.equal(sampleValue(families, 'tcpao_proxy_connections_open'), status.connections.length);
  for (const connection of status.connections) {
    const socket = `conn ${connection.id}`;
    t.equal(sampleValue(families, 'tcpao_proxy_current_key_id', { socket }), connection.currentKey, `${socket} current key`);
    t.equal(sampleValue(families, 'tcpao_proxy_ao_packets_total', { socket, result: 'good' }), connection.ao?.pktGood, `${socket} good segments`);
    t.equal(
      sampleValue(families, 'tcpao_proxy_connection_bytes_total', { conn: String(connection.id), direction: 'client_to_upstream' }),
      connection.bytesClientToUpstream,
    );
    for (const key of connection.keys) {
      t.equal(
        sampleValue(families, 'tcpao_proxy_key_packets_total', { socket, send_id: String(key.sendId), recv_id: String(key.recvId), result: 'good' }),
        key.pktGood,
        `${socket} key ${key.sendId} good segments`,
      );
    }
  }
  t.equal(sampleValue(families, 'tcpao_proxy_keys_installed', { socket: 'listener 10.0.0.2:1790' }), 2);
  t.same(status.totals.connectionsRefused, { max_connections: 0, max_connections_per_peer: 3, unknown_peer: 1 });
  for (const [reason, count] of Object.entries(status.totals.connectionsRefused)) {
    t.equal(sampleValue(families, 'tcpao_proxy_connections_refused_total', { reason }), count, `refusals for ${reason}`);
  }
  t.equal(sampleValue(families, 'tcpao_proxy_accept_errors_total'), 2);
});

t.test('label values and help texts are escaped', async (t) => {
  const text = renderFamilies([
    { name: 'x_total', type: 'counter', help: 'a \\ back\nslash', samples: [{ labels: { path: 'a"b\\c\nd' }, value: 5 }] },
  ]);
  const families = parseMetrics(text);
  t.equal(families[0]?.metrics[0]?.labels?.['path'], 'a"b\\c\nd', 'the label value survives the round trip');
  t.equal(families[0]?.help, 'a \\ back\nslash');
});

t.test('the HTTP listener serves /metrics and /status and nothing else', async (t) => {
  const fake = new FakeKernelBinding();
  const statusSource = source(fake);
  const server = await startObservability({ host: '127.0.0.1', port: 0, family: 4 }, () => snapshot(statusSource, fake.binding()), quiet);
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}`;
  const metrics = await fetch(`${base}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  t.ok(parseMetrics(await metrics.text()).length > 5, 'the page parses');
  const status = await fetch(`${base}/status`);
  t.equal(status.status, 200);
  const body = (await status.json()) as { config: { lastReload: unknown }; connections: unknown[] };
  t.equal(body.config.lastReload, null, 'no reload yet');
  t.equal(body.connections.length, 2);
  t.equal((await fetch(`${base}/`)).status, 404);
  t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});

t.test('a metrics port in use is a coded startup error', async (t) => {
  const fake = new FakeKernelBinding();
  const statusSource = source(fake);
  const first = await startObservability({ host: '127.0.0.1', port: 0, family: 4 }, () => snapshot(statusSource, fake.binding()), quiet);
  t.teardown(() => first.close());
  await t.rejects(
    startObservability({ host: '127.0.0.1', port: first.address().port, family: 4 }, () => snapshot(statusSource, fake.binding()), quiet),
    { code: 'ERR_TCPAO_METRICS_LISTEN' },
  );
});

t.test('metrics_listen: off by default, a bare port means loopback', async (t) => {
  const base = ['[terminator]', 'listen_ao = "10.0.0.2:1790"', 'forward_plain = "127.0.0.1:1"', '[[ao_policy]]', 'name = "w"', 'peer_ip = "10.0.0.1"', 'keyid = 1', 'mac_alg = "hmac-sha1"', 'key_source = "env:K"'];
  const load = (global: string[]) =>
    loadConfigText([...global, ...base].join('\n'), { source: 'x.toml', baseDir: '/', env: { K: 'observability-key' } }).config.global;
  t.equal(load([]).metrics_listen, undefined, 'no listener unless asked for');
  t.same(load(['[global]', 'metrics_listen = 9790']).metrics_listen, { host: '127.0.0.1', port: 9790, family: 4 });
  t.same(load(['[global]', 'metrics_listen = "[::1]:9791"']).metrics_listen, { host: '::1', port: 9791, family: 6 });
});

t.test('after a reload that failed with key bytes in its problem text, /status and /metrics hold no key byte', async (t) => {
  const key = 'observability-leak-key-7f3a9c';
  const failed: ReloadRecord = {
    ...RELOAD,
    result: 'failed',
    problems: [
      { code: 'ERR_TCPAO_CONFIG_INVALID', path: 'ao_policy[0].key', message: `expected [[ao_policy.key]] tables, got "${key}"` },
      { code: 'ERR_TCPAO_CONFIG_INVALID', path: `global.${key}`.replace(/-/g, '_'), message: 'unknown key' },
      { code: 'ERR_TCPAO_CONFIG_SYNTAX', path: `/etc/tcpao/terminator.toml:3:7 near "${key}"`, message: `unexpected "${key}"` },
      { code: key, path: '(reload)', message: key, sysCode: key },
      { code: 'ERR_TCPAO_RELOAD_KEY_INSTALL', path: 'the listener', message: `could not add key: ${key}`, sysCode: 'EINVAL' },
    ],
  };
  const fake = new FakeKernelBinding();
  const status = snapshot(source(fake, failed), fake.binding());
  const pages = [JSON.stringify(status), renderMetrics(status)];
  for (const encoding of [key, Buffer.from(key).toString('hex'), Buffer.from(key).toString('base64')]) {
    for (const page of pages) t.notOk(page.includes(encoding) || page.includes(encoding.replace(/-/g, '_')), 'no encoding of the key on either page');
  }
  t.same(
    status.config.lastReload?.problems.map((problem) => [problem.code, problem.path, problem.sysCode]),
    [
      ['ERR_TCPAO_CONFIG_INVALID', 'ao_policy[0].key', undefined],
      ['ERR_TCPAO_CONFIG_INVALID', '(config)', undefined],
      ['ERR_TCPAO_CONFIG_SYNTAX', '(config)', undefined],
      ['ERR_TCPAO_INTERNAL', '(reload)', undefined],
      ['ERR_TCPAO_RELOAD_KEY_INSTALL', 'the listener', 'EINVAL'],
    ],
    'each problem keeps its code and a path that cannot be text from the file',
  );
  t.equal(
    status.config.lastReload?.problems[4]?.message,
    'a reload could not change the keys of a socket; every change it had made was undone',
    "the message is the code's registry text",
  );
  t.equal(sampleValue(parseMetrics(pages[1] as string), 'tcpao_proxy_last_reload_success'), 0, '/metrics reports the reload as failed');
});

t.test('metrics_listen beyond loopback is refused unless metrics_allow_remote is set', async (t) => {
  const base = ['[terminator]', 'listen_ao = "10.0.0.2:1790"', 'forward_plain = "127.0.0.1:1"', '[[ao_policy]]', 'name = "w"', 'peer_ip = "10.0.0.1"', 'keyid = 1', 'mac_alg = "hmac-sha1"', 'key_source = "env:K"'];
  const problems = (global: string[]): string[] => {
    try {
      loadConfigText([...global, ...base].join('\n'), { source: 'x.toml', baseDir: '/', env: { K: 'observability-key' } });
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems.map((problem) => `${problem.code} ${problem.path}`);
    }
  };
  for (const address of ['"0.0.0.0:9790"', '"10.0.0.2:9790"', '"[::]:9790"', '"[2001:db8::1]:9790"']) {
    t.same(problems(['[global]', `metrics_listen = ${address}`]), ['ERR_TCPAO_CONFIG_INVALID global.metrics_listen'], `${address} is refused`);
    t.same(problems(['[global]', `metrics_listen = ${address}`, 'metrics_allow_remote = true']), [], `${address} is accepted with the opt-in`);
  }
  for (const address of ['9790', '"127.0.0.1:9790"', '"127.0.0.53:9790"', '"[::1]:9790"']) {
    t.same(problems(['[global]', `metrics_listen = ${address}`]), [], `${address} is loopback`);
  }
});

t.test('the metrics listener caps its connections and closes idle ones, and keeps serving', async (t) => {
  const fake = new FakeKernelBinding();
  const statusSource = source(fake);
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const limits = { maxConnections: 4, idleTimeoutMs: 500 };
  const server = await startObservability({ host: '127.0.0.1', port: 0, family: 4 }, () => snapshot(statusSource, fake.binding()), pino(sink), limits);
  t.teardown(() => server.close());
  const idle = Array.from({ length: 12 }, () => {
    const socket = connect({ host: '127.0.0.1', port: server.address().port });
    socket.on('error', () => undefined);
    t.teardown(() => socket.destroy());
    return new Promise<void>((resolve) => socket.once('close', () => resolve()));
  });
  const closed = await Promise.race([
    Promise.all(idle).then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), 20_000).unref()),
  ]);
  t.equal(closed, true, 'every idle connection was closed: those over the cap at once, the others once idle');
  t.ok(lines.some((line) => line['event'] === 'metrics_connection_refused' && line['limit'] === 4), 'the refusals are logged');
  const metrics = await fetch(`http://127.0.0.1:${server.address().port}/metrics`);
  t.equal(metrics.status, 200, 'the next scrape is served');
});
