/**
 * Helpers for the rotation and observability suites: sidecars whose config
 * file the test rewrites and reloads through `tcpao-proxy reload`, configs
 * with several keys per policy, a paced stream, and /status and /metrics
 * fetched from inside a namespace (their listeners are on its loopback).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { endpoint, initiatorSection, policyToml, terminatorSection } from './configs.js';
import { LineProcess, REPO, spawnInNode, type JsonLine, type Teardownable } from './lab.js';

const CLI = join(REPO, 'bin', 'tcpao-proxy');
const PACED = join(REPO, 'dist', 'test', 'fixtures', 'paced-stream.js');
const FETCHER = join(REPO, 'dist', 'test', 'fixtures', 'http-fetcher.js');

/** One long-lived process in a namespace that fetches URLs for the test. */
export class Fetcher {
  readonly #proc: LineProcess;
  #nextId = 1;

  constructor(t: Teardownable, readonly node: string) {
    const child = spawn('ip', ['netns', 'exec', node, process.execPath, FETCHER], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#proc = new LineProcess(`fetcher-${node}`, child);
    t.teardown(async () => {
      child.stdin.end();
      await this.#proc.stop('SIGKILL');
    });
  }

  async get(url: string): Promise<string> {
    await this.#proc.waitFor((line) => line['event'] === 'ready', 120_000);
    const id = this.#nextId++;
    this.#proc.child.stdin?.write(`${JSON.stringify({ id, url })}\n`);
    const answer = await this.#proc.waitFor((line) => line['event'] === 'fetched' && line['id'] === id, 120_000);
    if (answer['error'] !== undefined) throw new Error(`GET ${url} in ${this.node}: ${String(answer['error'])}`);
    if (answer['status'] !== 200) throw new Error(`GET ${url} in ${this.node}: HTTP ${String(answer['status'])}`);
    return answer['body'] as string;
  }
}

export type Role = 'preferred' | 'accept' | 'deprecated';

export interface KeyTable {
  readonly sendId: number;
  readonly recvId: number;
  readonly role: Role;
  /** A key source such as "env:TCPAO_KEY_OLD" or "file:new.key". */
  readonly source: string;
  readonly macAlg?: 'hmac-sha1' | 'hmac-sha256' | 'aes-128-cmac';
}

export interface SideConfig {
  readonly mode: 'initiator' | 'terminator';
  /** initiator: listen_plain port; terminator: the app's port (forward_plain). */
  readonly localPort: number;
  /** The AO peer's address: remote_ao host on the initiator, peer_ip on both. */
  readonly peer: string;
  /** The terminator's listen_ao host (on the initiator: the remote). */
  readonly wireHost: string;
  readonly wirePort: number;
  readonly metricsPort?: number;
  readonly pidFile?: string;
  /** Several keys ([[ao_policy.key]]), or the spec's single-key form when `single` is set. */
  readonly keys?: readonly KeyTable[];
  readonly single?: { readonly keyid: number; readonly source: string };
  readonly connectTimeoutSecs?: number;
}

export function sideToml(config: SideConfig): string {
  const lines = [
    '[global]',
    'log_format = "json"',
    'log_level = "debug"',
    `connect_timeout_secs = ${config.connectTimeoutSecs ?? 3}`,
    'shutdown_timeout_secs = 5',
    'keepalive_time_secs = 600',
    ...(config.metricsPort === undefined ? [] : [`metrics_listen = "127.0.0.1:${config.metricsPort}"`]),
    ...(config.pidFile === undefined ? [] : [`pid_file = "${config.pidFile}"`]),
    '',
  ];
  const wire = endpoint(config.wireHost, config.wirePort);
  const local = `127.0.0.1:${config.localPort}`;
  lines.push(config.mode === 'initiator' ? initiatorSection(local, wire) : terminatorSection(wire, local));
  const policy = { peer: config.peer, peerPort: config.wirePort };
  lines.push(
    config.single === undefined
      ? policyToml({ ...policy, keys: config.keys ?? [] })
      : policyToml({ ...policy, keyid: config.single.keyid, keySource: config.single.source }),
  );
  return lines.join('\n');
}

/** A sidecar with a config file the test can rewrite and reload. */
export class ReloadableSidecar {
  readonly dir: string;
  readonly configPath: string;
  readonly pidFile: string;
  readonly #fetcher: Fetcher | undefined;
  proc!: LineProcess;

  constructor(
    t: Teardownable,
    readonly node: string,
    readonly mode: 'initiator' | 'terminator',
    readonly metricsPort: number | undefined,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `tcpao-rot-${mode}-`));
    t.teardown(() => rmSync(this.dir, { recursive: true, force: true }));
    this.configPath = join(this.dir, `${mode}.toml`);
    this.pidFile = join(this.dir, `${mode}.pid`);
    this.#fetcher = metricsPort === undefined ? undefined : new Fetcher(t, node);
  }

  writeConfig(text: string): void {
    writeFileSync(this.configPath, text);
  }

  writeFile(name: string, content: string): void {
    writeFileSync(join(this.dir, name), content, { mode: 0o600 });
  }

  start(t: Teardownable, env: NodeJS.ProcessEnv): LineProcess {
    this.proc = spawnInNode(t, this.node, this.mode, process.execPath, [CLI, '--mode', this.mode, '--config', this.configPath], env);
    return this.proc;
  }

  /** Runs `tcpao-proxy reload --pid-file` and resolves with its exit status and output. */
  reload(): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, 'reload', '--pid-file', this.pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      child.once('exit', (status) => resolve({ status, stdout, stderr }));
    });
  }

  /** Waits for the reload_applied or reload_failed line after the n-th reload request. */
  async reloadOutcome(count: number): Promise<JsonLine> {
    const isOutcome = (line: JsonLine) => line['event'] === 'reload_applied' || line['event'] === 'reload_failed';
    await this.proc.waitFor(() => this.proc.lines.filter(isOutcome).length >= count, 120_000);
    return this.proc.lines.filter(isOutcome)[count - 1] as JsonLine;
  }

  async status(): Promise<StatusBody> {
    if (this.#fetcher === undefined) throw new Error('no metrics listener');
    return JSON.parse(await this.#fetcher.get(`http://127.0.0.1:${this.metricsPort ?? 0}/status`)) as StatusBody;
  }

  async metrics(): Promise<string> {
    if (this.#fetcher === undefined) throw new Error('no metrics listener');
    return this.#fetcher.get(`http://127.0.0.1:${this.metricsPort ?? 0}/metrics`);
  }
}

export interface StatusKey {
  readonly sendId: number;
  readonly recvId: number;
  readonly isCurrent: boolean;
  readonly isRnext: boolean;
  readonly pktGood: number;
  readonly pktBad: number;
}

export interface StatusConnection {
  readonly id: number;
  readonly peer: string;
  readonly wirePeer: string;
  readonly ageSecs: number;
  readonly bytesClientToUpstream: number;
  readonly bytesUpstreamToClient: number;
  readonly currentKey: number | null;
  readonly rnextKey: number | null;
  readonly ao: Record<string, number> | null;
  readonly keys: readonly StatusKey[];
  readonly pendingRemovals: readonly Record<string, unknown>[];
}

export interface StatusBody {
  readonly mode: string;
  readonly config: {
    readonly generation: number;
    readonly lastReload: { readonly result: string; readonly at: string; readonly problems: readonly { code: string }[] } | null;
    readonly reloadsApplied: number;
    readonly reloadsFailed: number;
  };
  readonly listeners: readonly { readonly kind: string; readonly address: string; readonly keys: readonly StatusKey[]; readonly ao: Record<string, number> | null }[];
  readonly connections: readonly StatusConnection[];
  readonly totals: Record<string, number>;
}

export function startEcho(t: Teardownable, node: string, port: number): LineProcess {
  return spawnInNode(t, node, 'echo-app', process.execPath, [PACED, 'echo', `127.0.0.1:${port}`]);
}

export function startPacedClient(t: Teardownable, node: string, port: number, chunkBytes = 16_384, everyMs = 5): LineProcess {
  return spawnInNode(t, node, 'paced-client', process.execPath, [PACED, 'client', `127.0.0.1:${port}`, String(chunkBytes), String(everyMs)]);
}

/** Polls `probe` until it returns a value that is not undefined; rejects with `what` after timeoutMs. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** With TCPAO_E2E_DUMP=DIR, writes every process's output there at teardown (for failures inside the lab). */
export function dumpOutputs(t: Teardownable, procs: () => readonly (LineProcess | undefined)[]): void {
  const dir = process.env['TCPAO_E2E_DUMP'];
  if (dir === undefined || dir === '') return;
  t.teardown(() => {
    for (const proc of procs()) {
      if (proc !== undefined) writeFileSync(join(dir, `${proc.name}-${proc.child.pid ?? 0}.log`), proc.text.join(''));
    }
  });
}
