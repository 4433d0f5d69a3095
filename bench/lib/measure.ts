/**
 * One benchmark target (a proxy, a chain of proxies, or nothing at all) put
 * through the four figures: bulk throughput, 64-byte round trip, new
 * connections per second, memory per idle connection. Every load generator
 * and backend runs in its own process.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { freePort, runPeer, sleep, startHelper, startPeer, treeCpuSeconds, treeMemory, type Helper, type JsonEvent, type TreeMemory } from './proc.js';

export interface AoClientArgs {
  readonly peer: string;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: 'hmac-sha1' | 'hmac-sha256' | 'aes-128-cmac';
}

/** A running proxy (or chain) in front of one backend port. */
export interface ProxyInstance {
  readonly port: number;
  /** Root pid of each proxy process tree, by role; empty for "direct". */
  readonly processes: Readonly<Record<string, number>>;
  stop(): Promise<void>;
}

export type ProxyFactory = (targetPort: number) => Promise<ProxyInstance>;

export interface Workload {
  /** Interleaved rounds of bulk, iperf3, round trips and connection rate. */
  readonly rounds: number;
  readonly bulkBytes: number;
  readonly rttCount: number;
  readonly rttWarmup: number;
  readonly connDurationMs: number;
  readonly connConcurrency: number;
  readonly idleConnections: number;
  /** How many idle connections are opened at once. */
  readonly idleConcurrency: number;
  /** Each client's connect and echo timeout. */
  readonly clientTimeoutMs: number;
  /** Seconds of iperf3 per run, or 0 to skip it. */
  readonly iperf3Secs: number;
}

export interface Backend {
  readonly sinkPort: number;
  readonly echoPort: number;
}

export interface TargetSpec {
  readonly name: string;
  readonly host: string;
  readonly backend: Backend;
  readonly proxy: ProxyFactory;
  /** Set when the client itself speaks TCP-AO (the direct AO pair). */
  readonly ao?: AoClientArgs;
  readonly env?: NodeJS.ProcessEnv;
}

export interface IdleMemory {
  readonly connections: number;
  readonly failed: number;
  /** Per proxy role: memory before and with the idle connections open. */
  readonly byRole: Readonly<Record<string, { before: TreeMemory; after: TreeMemory; rssKibPerConn: number; pssKibPerConn: number }>>;
  readonly rssKibPerConn: number;
  readonly pssKibPerConn: number;
}

export interface RttRound {
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly maxUs: number;
  readonly count: number;
}

export interface ConnRound {
  readonly connectionsPerSec: number;
  readonly completed: number;
  readonly failed: number;
}

/** Per-round raw figures and, for each, the median over the rounds. */
export interface TargetResult {
  readonly throughput: {
    readonly runs: readonly number[];
    readonly medianGbitPerSec: number;
    /** CPU seconds the proxy processes spent per GiB relayed (sum over roles, all rounds). */
    readonly proxyCpuSecPerGiB: number | null;
  };
  readonly iperf3?: { readonly runs: readonly number[]; readonly medianGbitPerSec: number };
  readonly rtt: { readonly rounds: readonly RttRound[]; readonly medianP50Us: number; readonly medianP99Us: number };
  readonly connrate: { readonly rounds: readonly ConnRound[]; readonly medianPerSec: number; readonly concurrency: number };
  readonly idle: IdleMemory | null;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

const numberOf = (event: JsonEvent, field: string): number => {
  const value = event[field];
  if (typeof value !== 'number') throw new Error(`result lacks ${field}: ${JSON.stringify(event)}`);
  return value;
};

function cpuOf(proxy: ProxyInstance): number {
  return Object.values(proxy.processes).reduce((sum, pid) => sum + treeCpuSeconds(pid), 0);
}

async function withProxy<T>(spec: TargetSpec, targetPort: number, body: (proxy: ProxyInstance) => Promise<T>): Promise<T> {
  const proxy = await spec.proxy(targetPort);
  try {
    return await body(proxy);
  } finally {
    await proxy.stop();
  }
}

function clientArgs(spec: TargetSpec, port: number, workload: Workload): Record<string, unknown> {
  return { host: spec.host, port, timeoutMs: workload.clientTimeoutMs, ...(spec.ao === undefined ? {} : { ao: spec.ao }) };
}

/** One bulk transfer through a fresh proxy: Gbit/s and the proxy's CPU seconds for it. */
async function bulkOnce(spec: TargetSpec, workload: Workload): Promise<{ gbitPerSec: number; proxyCpuSec: number | null }> {
  return withProxy(spec, spec.backend.sinkPort, async (proxy) => {
    const cpuBefore = cpuOf(proxy);
    const result = await runPeer(`${spec.name} send`, { role: 'send', bytes: workload.bulkBytes, ...clientArgs(spec, proxy.port, workload) }, spec.env);
    const hasProxy = Object.keys(proxy.processes).length > 0;
    return { gbitPerSec: numberOf(result, 'gbitPerSec'), proxyCpuSec: hasProxy ? cpuOf(proxy) - cpuBefore : null };
  });
}

/** iperf3 single stream through the target, one direction (client sends). */
async function iperf3Once(spec: TargetSpec, workload: Workload): Promise<number> {
  const serverPort = await freePort();
  const server: Helper = startHelper(`${spec.name} iperf3 server`, 'iperf3', ['-s', '-1', '-p', String(serverPort), '-B', spec.host]);
  try {
    await waitListening(serverPort, server);
    return await withProxy(spec, serverPort, async (proxy) => {
      const client = spawnSync('iperf3', ['-c', spec.host, '-p', String(proxy.port), '-t', String(workload.iperf3Secs), '-J'], {
        encoding: 'utf8',
        timeout: (workload.iperf3Secs + 30) * 1_000,
      });
      if (client.status !== 0) throw new Error(`iperf3 client failed: ${client.stdout}${client.stderr}`);
      const report = JSON.parse(client.stdout) as { end: { sum_received: { bits_per_second: number } } };
      return report.end.sum_received.bits_per_second / 1e9;
    });
  } finally {
    await server.stop('SIGKILL');
  }
}

async function latencyAndRateOnce(spec: TargetSpec, workload: Workload): Promise<{ rtt: RttRound; connrate: ConnRound }> {
  return withProxy(spec, spec.backend.echoPort, async (proxy) => {
    const rtt = await runPeer(
      `${spec.name} rtt`,
      { role: 'rtt', size: 64, count: workload.rttCount, warmup: workload.rttWarmup, ...clientArgs(spec, proxy.port, workload) },
      spec.env,
    );
    const rate = await runPeer(
      `${spec.name} connrate`,
      {
        role: 'connrate',
        concurrency: workload.connConcurrency,
        durationMs: workload.connDurationMs,
        ...clientArgs(spec, proxy.port, workload),
      },
      spec.env,
    );
    return {
      rtt: {
        p50Us: numberOf(rtt, 'p50Us'),
        p90Us: numberOf(rtt, 'p90Us'),
        p99Us: numberOf(rtt, 'p99Us'),
        meanUs: numberOf(rtt, 'meanUs'),
        maxUs: numberOf(rtt, 'maxUs'),
        count: numberOf(rtt, 'count'),
      },
      connrate: {
        connectionsPerSec: numberOf(rate, 'connectionsPerSec'),
        completed: numberOf(rate, 'completed'),
        failed: numberOf(rate, 'failed'),
      },
    };
  });
}

async function measureIdle(spec: TargetSpec, workload: Workload): Promise<IdleMemory | null> {
  return withProxy(spec, spec.backend.echoPort, async (proxy) => {
    const roles = Object.entries(proxy.processes);
    if (roles.length === 0) return null;
    await sleep(500);
    const before = Object.fromEntries(roles.map(([role, pid]) => [role, treeMemory(pid)]));
    const idle = startPeer(
      `${spec.name} idle`,
      { role: 'idle', connections: workload.idleConnections, concurrency: workload.idleConcurrency, ...clientArgs(spec, proxy.port, workload) },
      spec.env,
    );
    try {
      const ready = await idle.waitFor('ready');
      const opened = numberOf(ready, 'opened');
      await sleep(1_000);
      const byRole: Record<string, IdleMemory['byRole'][string]> = {};
      let rssKib = 0;
      let pssKib = 0;
      for (const [role, pid] of roles) {
        const after = treeMemory(pid);
        const roleBefore = before[role] as TreeMemory;
        const rssDelta = after.rssKib - roleBefore.rssKib;
        const pssDelta = after.pssKib - roleBefore.pssKib;
        rssKib += rssDelta;
        pssKib += pssDelta;
        byRole[role] = {
          before: roleBefore,
          after,
          rssKibPerConn: opened > 0 ? rssDelta / opened : 0,
          pssKibPerConn: opened > 0 ? pssDelta / opened : 0,
        };
      }
      return {
        connections: opened,
        failed: numberOf(ready, 'failed'),
        byRole,
        rssKibPerConn: opened > 0 ? rssKib / opened : 0,
        pssKibPerConn: opened > 0 ? pssKib / opened : 0,
      };
    } finally {
      await idle.stop();
    }
  });
}

interface Round {
  readonly bulk: { gbitPerSec: number; proxyCpuSec: number | null };
  readonly iperf3?: number;
  readonly rtt: RttRound;
  readonly connrate: ConnRound;
}

/**
 * Measures every target. Throughput, round trips and connection rate run in
 * interleaved rounds (round 1 of every target, then round 2, ...), so a burst
 * of background load hits all targets alike; each figure is the median over
 * the rounds. Idle memory is measured once per target at the end.
 */
export async function measureAll(
  specs: readonly TargetSpec[],
  workload: Workload,
  log: (line: string) => void,
): Promise<Record<string, TargetResult>> {
  const rounds = new Map<string, Round[]>(specs.map((spec) => [spec.name, []]));
  for (let round = 1; round <= workload.rounds; round += 1) {
    for (const spec of specs) {
      const useIperf3 = workload.iperf3Secs > 0 && spec.ao === undefined;
      log(`round ${round}/${workload.rounds} ${spec.name}: bulk${useIperf3 ? ', iperf3' : ''}, 64-byte round trips, connections/s`);
      const bulk = await bulkOnce(spec, workload);
      const iperf3 = useIperf3 ? await iperf3Once(spec, workload) : undefined;
      const { rtt, connrate } = await latencyAndRateOnce(spec, workload);
      rounds.get(spec.name)?.push({ bulk, ...(iperf3 === undefined ? {} : { iperf3 }), rtt, connrate });
    }
  }
  const results: Record<string, TargetResult> = {};
  for (const spec of specs) {
    log(`${spec.name}: memory with ${workload.idleConnections} idle connections`);
    const idle = await measureIdle(spec, workload);
    const done = rounds.get(spec.name) ?? [];
    const cpu = done.map((one) => one.bulk.proxyCpuSec);
    const gib = (workload.bulkBytes * done.length) / 1024 ** 3;
    const iperf3Runs = done.flatMap((one) => (one.iperf3 === undefined ? [] : [one.iperf3]));
    results[spec.name] = {
      throughput: {
        runs: done.map((one) => one.bulk.gbitPerSec),
        medianGbitPerSec: median(done.map((one) => one.bulk.gbitPerSec)),
        proxyCpuSecPerGiB: cpu.some((value) => value === null) ? null : cpu.reduce<number>((sum, value) => sum + (value ?? 0), 0) / gib,
      },
      ...(iperf3Runs.length === 0 ? {} : { iperf3: { runs: iperf3Runs, medianGbitPerSec: median(iperf3Runs) } }),
      rtt: {
        rounds: done.map((one) => one.rtt),
        medianP50Us: median(done.map((one) => one.rtt.p50Us)),
        medianP99Us: median(done.map((one) => one.rtt.p99Us)),
      },
      connrate: {
        rounds: done.map((one) => one.connrate),
        medianPerSec: median(done.map((one) => one.connrate.connectionsPerSec)),
        concurrency: workload.connConcurrency,
      },
      idle,
    };
  }
  return results;
}

/** Resolves once something listens on the TCP port (read from /proc/net/tcp{,6}). */
export async function waitListening(port: number, owner: Helper, timeoutMs = 180_000): Promise<void> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (owner.child.exitCode !== null || owner.child.signalCode !== null) {
      throw new Error(`${owner.name} exited before listening on port ${port}; output:\n${owner.output.join('')}`);
    }
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text = '';
      try {
        text = readFileSync(table, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        if (fields[3] === '0A' && fields[1]?.endsWith(`:${hexPort}`)) return;
      }
    }
    await sleep(50);
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
}

/** Starts the backend process (sink and echo listeners) and returns its ports. */
export async function startBackend(host: string, ao?: AoClientArgs, env: NodeJS.ProcessEnv = {}): Promise<{ backend: Backend; helper: Helper }> {
  const helper = startPeer('backend', { role: 'backend', host, ...(ao === undefined ? {} : { ao }) }, env);
  const listening = await helper.waitFor('listening');
  return { backend: { sinkPort: numberOf(listening, 'sinkPort'), echoPort: numberOf(listening, 'echoPort') }, helper };
}
