/**
 * Kernel-lab benchmark (needs a TCP-AO kernel: run it through
 * `scripts/kernel-lab run -- node dist/bench/lab.js`): the real sidecars,
 * client -> initiator -> TCP-AO -> terminator -> app, against a direct TCP-AO
 * socket pair and a direct plain pair, all on the lab's loopback.
 *
 * Usage: node dist/bench/lab.js [--targets direct-plain,direct-ao,chain] [--scale full|quick|tcg] [--quick] [--out FILE]
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { defaultBinding } from '../src/native/index.js';
import { measureAll, startBackend, waitListening, type AoClientArgs, type ProxyFactory, type TargetResult, type TargetSpec, type Workload } from './lib/measure.js';
import { REPO, freePort, startHelper, type Helper } from './lib/proc.js';
import { describeMachine, figuresOf, ratiosOf, renderTable, writeResult, type Figures } from './lib/report.js';

const binding = defaultBinding();

const HOST = '127.0.0.1';
const CLI = join(REPO, 'bin', 'tcpao-proxy');
/** A benchmark-only key; it still travels by environment, as the sidecar requires. */
const BENCH_KEY = 'tcpao-bench-key-not-a-secret-0123';
const KEY_ID = 1;
const MAC_ALGORITHM = 'hmac-sha256';
const AO: AoClientArgs = { peer: HOST, sendId: KEY_ID, recvId: KEY_ID, algorithm: MAC_ALGORITHM };

function globalSection(): string {
  return [
    '[global]',
    'log_format = "json"',
    'log_level = "info"',
    'max_connections = 4096',
    'idle_timeout_secs = 300',
    // Connection setup under TCG emulation with concurrent clients can take seconds.
    'connect_timeout_secs = 60',
    '',
  ].join('\n');
}

function policySection(wirePort: number): string {
  return [
    '[[ao_policy]]',
    'name = "bench-wire"',
    `peer_ip = "${HOST}"`,
    `peer_port = ${wirePort}`,
    `keyid = ${KEY_ID}`,
    `mac_alg = "${MAC_ALGORITHM}"`,
    'key_source = "env:TCPAO_KEY"',
    '',
  ].join('\n');
}

/** Starts one sidecar with its log going to a file, and waits until it listens. */
async function startSidecar(dir: string, mode: 'initiator' | 'terminator', toml: string, listenPort: number): Promise<Helper> {
  const config = join(dir, `${mode}.toml`);
  writeFileSync(config, toml);
  const logFd = openSync(join(dir, `${mode}.log`), 'w');
  const helper = startHelper(mode, process.execPath, [CLI, '--mode', mode, '--config', config], {
    env: { ...process.env, TCPAO_KEY: BENCH_KEY },
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  await waitListening(listenPort, helper);
  return helper;
}

const direct: ProxyFactory = async (targetPort) => ({ port: targetPort, processes: {}, stop: async () => undefined });

const chain: ProxyFactory = async (targetPort) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-bench-chain-'));
  const wirePort = await freePort();
  const plainPort = await freePort();
  const terminator = await startSidecar(
    dir,
    'terminator',
    [globalSection(), '[terminator]', `listen_ao = "${HOST}:${wirePort}"`, `forward_plain = "${HOST}:${targetPort}"`, '', policySection(wirePort)].join('\n'),
    wirePort,
  );
  const initiator = await startSidecar(
    dir,
    'initiator',
    [globalSection(), '[initiator]', `listen_plain = "${HOST}:${plainPort}"`, `remote_ao = "${HOST}:${wirePort}"`, '', policySection(wirePort)].join('\n'),
    plainPort,
  );
  return {
    port: plainPort,
    processes: { initiator: initiator.pid, terminator: terminator.pid },
    stop: async () => {
      await initiator.stop();
      await terminator.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

/**
 * "full" and "quick" match the host part. "tcg" is for a lab without KVM: the
 * emulated CPU is tens of times slower, so every count is cut down to keep a
 * run within minutes (and only the ratios mean anything there).
 */
const WORKLOADS: Readonly<Record<string, Workload>> = {
  full: {
    rounds: 3,
    bulkBytes: 1024 ** 3,
    rttCount: 5_000,
    rttWarmup: 500,
    connDurationMs: 5_000,
    connConcurrency: 16,
    idleConcurrency: 32,
    clientTimeoutMs: 10_000,
    idleConnections: 1_000,
    iperf3Secs: 0,
  },
  quick: {
    rounds: 1,
    bulkBytes: 256 * 1024 ** 2,
    rttCount: 2_000,
    rttWarmup: 500,
    connDurationMs: 2_000,
    connConcurrency: 16,
    idleConcurrency: 32,
    clientTimeoutMs: 10_000,
    idleConnections: 200,
    iperf3Secs: 0,
  },
  tcg: {
    rounds: 3,
    bulkBytes: 64 * 1024 ** 2,
    rttCount: 300,
    rttWarmup: 30,
    connDurationMs: 5_000,
    connConcurrency: 16,
    idleConcurrency: 4,
    clientTimeoutMs: 60_000,
    idleConnections: 200,
    iperf3Secs: 0,
  },
};

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

async function main(): Promise<void> {
  const probe = binding.probeTcpAo();
  if (!probe.supported) {
    throw new Error(`this kernel has no TCP-AO (${probe.reason}); run it as: scripts/kernel-lab run -- node dist/bench/lab.js`);
  }
  const targets = (flag('--targets') ?? 'direct-plain,direct-ao,chain').split(',');
  const scale = flag('--scale') ?? (process.argv.includes('--quick') ? 'quick' : 'full');
  const workload = WORKLOADS[scale];
  if (workload === undefined) throw new Error(`unknown --scale ${scale}; known: ${Object.keys(WORKLOADS).join(', ')}`);
  const log = (line: string) => process.stderr.write(`bench lab: ${line}\n`);
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  const aoEnv = { BENCH_AO_KEY: BENCH_KEY };
  const plain = await startBackend(HOST);
  const ao = await startBackend(HOST, AO, aoEnv);
  let results: Record<string, TargetResult>;
  try {
    const specs: TargetSpec[] = targets.map((name) => {
      if (name === 'direct-plain') return { name, host: HOST, backend: plain.backend, proxy: direct };
      if (name === 'direct-ao') return { name, host: HOST, backend: ao.backend, proxy: direct, ao: AO, env: aoEnv };
      if (name === 'chain') return { name, host: HOST, backend: plain.backend, proxy: chain };
      throw new Error(`unknown target ${name}; known: direct-plain, direct-ao, chain`);
    });
    results = await measureAll(specs, workload, log);
  } finally {
    await plain.helper.stop();
    await ao.helper.stop();
  }

  const figures: Record<string, Figures> = Object.fromEntries(Object.entries(results).map(([name, result]) => [name, figuresOf(result)]));
  const comparisons = (
    [
      ['chain', 'direct-ao'],
      ['chain', 'direct-plain'],
      ['direct-ao', 'direct-plain'],
    ] as const
  ).filter(([top, bottom]) => top in figures && bottom in figures);
  const ratios = Object.fromEntries(
    comparisons.map(([top, bottom]) => [`${top}/${bottom}`, ratiosOf(figures[top] as Figures, figures[bottom] as Figures)]),
  );
  const path = writeResult(
    'lab',
    {
      kind: 'lab',
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: { ...describeMachine(), inKernelLab: process.env['TCPAO_LAB'] === '1' },
      loadAverage: { atStart: loadAtStart, atEnd: loadavg() },
      scale,
      workload,
      notes: [
        'all on the lab loopback; load generator, sidecars and backend are separate processes sharing the guest CPUs',
        `chain = node bin/tcpao-proxy initiator -> TCP-AO (${MAC_ALGORITHM}, key id ${KEY_ID}) -> terminator, log_level info to a file`,
        'direct-ao = the same node client/backend on sockets from the src/native binding (connectAo/createAoListener)',
        'idle memory of the chain = initiator delta + terminator delta (each also listed under results.chain.idle.byRole)',
      ],
      figures,
      ratios,
      results,
    },
    flag('--out'),
  );
  const perSidecar = Object.entries(results['chain']?.idle?.byRole ?? {}).map(
    ([role, memory]) => `  ${role}: RSS ${memory.rssKibPerConn.toFixed(1)} KiB/conn, PSS ${memory.pssKibPerConn.toFixed(1)} KiB/conn`,
  );
  const sidecarLines = perSidecar.length > 0 ? `\nidle memory per sidecar (chain):\n${perSidecar.join('\n')}\n` : '';
  process.stdout.write(`${renderTable(figures, comparisons)}\n${sidecarLines}\nresult: ${path}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench lab: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
