/**
 * Host benchmark: the sidecar's relay module (through bench/relay-harness)
 * against socat and HAProxy doing the same plain TCP relay on loopback, with
 * no proxy at all as the ceiling.
 *
 * Usage: node dist/bench/host.js [--targets direct,relay,socat,haproxy] [--quick] [--out FILE]
 * What-if targets: "relay-hwm-<bytes>" runs the harness with that highWaterMark on
 * both legs; "relay-noidle" without the idle timer (idle_timeout_secs = 0);
 * "relay-copy" is the relay without splice (every byte through its buffer);
 * "socat-b<bytes>" is socat with a larger transfer block than its 8192-byte default.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { measureAll, startBackend, waitListening, type ProxyFactory, type ProxyInstance, type TargetResult, type Workload } from './lib/measure.js';
import { HARNESS_SCRIPT, freePort, startHelper, type Helper } from './lib/proc.js';
import { describeMachine, figuresOf, ratiosOf, renderTable, writeResult, type Figures } from './lib/report.js';

const HOST = '127.0.0.1';

function helperInstance(helper: Helper, port: number, role: string): ProxyInstance {
  return { port, processes: { [role]: helper.pid }, stop: () => helper.stop('SIGTERM') };
}

const direct: ProxyFactory = async (targetPort) => ({ port: targetPort, processes: {}, stop: async () => undefined });

function relay(
  knobs: { readonly highWaterMark?: number; readonly idleTimeoutMs?: number; readonly relaySplice?: boolean } = {},
): ProxyFactory {
  return async (targetPort) => {
    const args = { listenHost: HOST, targetHost: HOST, targetPort, ...knobs };
    const helper = startHelper('relay harness', process.execPath, [HARNESS_SCRIPT, JSON.stringify(args)]);
    const listening = await helper.waitFor('listening');
    return helperInstance(helper, Number(listening['port']), 'relay');
  };
}

/** socat as a user would run it; bufferBytes sets -b (socat's default transfer block is 8192 bytes). */
const socat = (bufferBytes?: number): ProxyFactory => async (targetPort) => {
  const port = await freePort();
  const helper = startHelper('socat', 'socat', [
    ...(bufferBytes === undefined ? [] : [`-b${bufferBytes}`]),
    `TCP-LISTEN:${port},bind=${HOST},fork,reuseaddr,nodelay,backlog=4096`,
    `TCP:${HOST}:${targetPort},nodelay`,
  ]);
  await waitListening(port, helper);
  return helperInstance(helper, port, 'socat');
};

const haproxy: ProxyFactory = async (targetPort) => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-bench-haproxy-'));
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(
    config,
    [
      'global',
      '  maxconn 3000',
      'defaults',
      '  mode tcp',
      '  timeout connect 10s',
      '  timeout client 120s',
      '  timeout server 120s',
      'frontend bench',
      `  bind ${HOST}:${port}`,
      '  default_backend app',
      'backend app',
      `  server app ${HOST}:${targetPort}`,
      '',
    ].join('\n'),
  );
  const helper = startHelper('haproxy', 'haproxy', ['-db', '-f', config]);
  await waitListening(port, helper);
  const instance = helperInstance(helper, port, 'haproxy');
  return {
    ...instance,
    stop: async () => {
      await instance.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

function factoryFor(name: string): ProxyFactory {
  if (name === 'direct') return direct;
  if (name === 'relay') return relay();
  if (name === 'socat') return socat();
  const socatBuffer = /^socat-b(\d+)$/.exec(name);
  if (socatBuffer !== null) return socat(Number(socatBuffer[1]));
  if (name === 'haproxy') return haproxy;
  const waterMark = /^relay-hwm-(\d+)$/.exec(name);
  if (waterMark !== null) return relay({ highWaterMark: Number(waterMark[1]) });
  if (name === 'relay-noidle') return relay({ idleTimeoutMs: 0 });
  if (name === 'relay-copy') return relay({ relaySplice: false });
  throw new Error(`unknown target ${name}; known: direct, relay, relay-copy, socat, socat-b<bytes>, haproxy, relay-hwm-<bytes>, relay-noidle`);
}

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

async function main(): Promise<void> {
  const targets = (flag('--targets') ?? 'direct,relay,socat,haproxy').split(',');
  const quick = process.argv.includes('--quick');
  const iperf3Secs = process.argv.includes('--no-iperf3') ? 0 : Number(flag('--iperf3-secs') ?? (quick ? 1 : 2));
  const workload: Workload = {
    rounds: quick ? 1 : 3,
    bulkBytes: quick ? 256 * 1024 ** 2 : 1024 ** 3,
    rttCount: quick ? 2_000 : 5_000,
    rttWarmup: 500,
    connDurationMs: quick ? 2_000 : 5_000,
    connConcurrency: 16,
    idleConcurrency: 32,
    clientTimeoutMs: 10_000,
    idleConnections: quick ? 200 : 1_000,
    iperf3Secs,
  };
  const log = (line: string) => process.stderr.write(`bench host: ${line}\n`);
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  const { backend, helper: backendHelper } = await startBackend(HOST);
  let results: Record<string, TargetResult>;
  try {
    results = await measureAll(
      targets.map((name) => ({ name, host: HOST, backend, proxy: factoryFor(name) })),
      workload,
      log,
    );
  } finally {
    await backendHelper.stop();
  }

  const figures: Record<string, Figures> = Object.fromEntries(Object.entries(results).map(([name, result]) => [name, figuresOf(result)]));
  // The relay against each peer, and each what-if variant against the relay as shipped.
  const comparisons: (readonly [string, string])[] = [
    ...['socat', 'haproxy', 'direct', ...targets.filter((name) => name.startsWith('socat-b'))].map((peer) => ['relay', peer] as const),
    ...targets.filter((name) => name.startsWith('relay-')).map((variant) => [variant, 'relay'] as const),
  ].filter(([top, bottom]) => top in figures && bottom in figures);
  const ratios = Object.fromEntries(
    comparisons.map(([top, bottom]) => [`${top}/${bottom}`, ratiosOf(figures[top] as Figures, figures[bottom] as Figures)]),
  );
  const path = writeResult(
    'host',
    {
      kind: 'host',
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: describeMachine(),
      loadAverage: { atStart: loadAtStart, atEnd: loadavg() },
      workload,
      notes: [
        'loopback; load generator, proxy and backend are separate processes sharing the same CPUs',
        'relay = bench/relay-harness.js (createProxyServer and the native relay, src/proxy/native-relay.ts, with the production socket settings)',
        'haproxy: default threads (one per CPU), no splice; socat: fork per connection, nodelay on both legs',
        'idle memory: delta of the proxy process tree (socat: parent plus forked children) over the open connections',
      ],
      figures,
      ratios,
      results,
    },
    flag('--out'),
  );
  process.stdout.write(`${renderTable(figures, comparisons)}\n\nresult: ${path}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench host: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
