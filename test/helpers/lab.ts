/**
 * The two-node topology for end-to-end suites: network namespaces named and
 * addressed like the containerlab nodes (deploy/containerlab/topology.env),
 * and processes started inside them whose JSON output lines are collected.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { initiatorToml, terminatorToml } from './configs.js';

export const REPO = resolve(__dirname, '..', '..', '..');
const TOPOLOGY_SCRIPT = join(REPO, 'scripts', 'lab-topology');
const CLI = join(REPO, 'bin', 'tcpao-proxy');
const TRAFFIC = join(REPO, 'dist', 'test', 'fixtures', 'traffic.js');

function readTopology(): Readonly<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const line of readFileSync(join(REPO, 'deploy', 'containerlab', 'topology.env'), 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match !== null) values[match[1] as string] = match[2] as string;
  }
  return values;
}

const env = readTopology();
function required(name: string): string {
  const value = env[name];
  if (value === undefined) throw new Error(`topology.env lacks ${name}`);
  return value;
}

export const topology = {
  initiatorNode: required('INITIATOR_NODE'),
  terminatorNode: required('TERMINATOR_NODE'),
  initiatorIpv4: required('INITIATOR_WIRE_IPV4'),
  terminatorIpv4: required('TERMINATOR_WIRE_IPV4'),
  initiatorIpv6: required('INITIATOR_WIRE_IPV6'),
  terminatorIpv6: required('TERMINATOR_WIRE_IPV6'),
  wirePort: Number(required('WIRE_PORT')),
  wireIface: required('WIRE_IFACE'),
} as const;

/** The subset of tap's Test that the helpers need. */
export interface Teardownable {
  teardown(fn: () => void | Promise<void>): void;
}

export function topologyUp(t: Teardownable): void {
  const up = spawnSync(TOPOLOGY_SCRIPT, ['up'], { encoding: 'utf8' });
  if (up.status !== 0) throw new Error(`lab-topology up failed: ${up.stderr}`);
  t.teardown(() => {
    spawnSync(TOPOLOGY_SCRIPT, ['down']);
  });
}

export type JsonLine = Record<string, unknown>;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** A child process whose output (stdout and stderr) is kept, with its JSON lines parsed, so callers can wait for one. */
export class LineProcess {
  readonly lines: JsonLine[] = [];
  readonly text: string[] = [];
  readonly exited: Promise<ExitStatus>;
  #waiters: { predicate: (line: JsonLine) => boolean; resolve: (line: JsonLine) => void }[] = [];
  #listeners: ((line: JsonLine) => void)[] = [];

  constructor(readonly name: string, readonly child: ChildProcess) {
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream?.setEncoding('utf8').on('data', (chunk: string) => {
        this.text.push(chunk);
        buffered += chunk;
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          this.#accept(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
        }
      });
    }
    this.exited = new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
  }

  #accept(raw: string): void {
    if (!raw.startsWith('{')) return;
    let line: JsonLine;
    try {
      line = JSON.parse(raw) as JsonLine;
    } catch {
      return;
    }
    this.lines.push(line);
    for (const listener of this.#listeners) listener(line);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.predicate(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }

  /** Calls fn for every JSON line from now on (the demo prints them as they come). */
  onLine(fn: (line: JsonLine) => void): void {
    this.#listeners.push(fn);
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first line (seen or future) that matches; rejects after timeoutMs or when the process exits first. */
  waitFor(predicate: (line: JsonLine) => boolean, timeoutMs = 60_000, what = 'matching line'): Promise<JsonLine> {
    const seen = this.lines.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; output:\n${this.text.join('')}`)), timeoutMs);
      this.#waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolveLine(line);
        },
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before a ${what}; output:\n${this.text.join('')}`));
      });
    });
  }

  /** Resolves once the raw output (JSON or not) matches pattern. */
  async waitForText(what: string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const started = Date.now();
    while (!pattern.test(this.text.join(''))) {
      if (!this.running()) throw new Error(`${this.name} exited before ${what}\n${this.text.join('')}`);
      if (Date.now() - started > timeoutMs) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.text.join('')}`);
      await sleep(100);
    }
  }

  events(name: string): JsonLine[] {
    return this.lines.filter((line) => line['event'] === name);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    if (this.running()) this.child.kill(signal);
    return this.exited;
  }
}

/**
 * Starts `command` inside network namespace `node`, with `baseEnv` (this
 * process's environment unless given) plus `extraEnv`; killed at teardown if
 * still running.
 */
export function spawnInNode(
  t: Teardownable,
  node: string,
  name: string,
  command: string,
  args: readonly string[],
  extraEnv: NodeJS.ProcessEnv = {},
  baseEnv: NodeJS.ProcessEnv = process.env,
): LineProcess {
  const child = spawn('ip', ['netns', 'exec', node, command, ...args], {
    env: { ...baseEnv, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new LineProcess(name, child);
  t.teardown(async () => {
    await proc.stop('SIGKILL');
  });
  return proc;
}

export function startTraffic(t: Teardownable, node: string, name: string, args: readonly string[]): LineProcess {
  return spawnInNode(t, node, name, process.execPath, [TRAFFIC, ...args]);
}

/** Writes a config into a fresh temp dir and starts the sidecar with it in `node`. */
export function startSidecar(
  t: Teardownable,
  node: string,
  mode: 'initiator' | 'terminator',
  configToml: string,
  extraEnv: NodeJS.ProcessEnv,
): LineProcess {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, `${mode}.toml`);
  writeFileSync(configPath, configToml);
  return spawnInNode(t, node, mode, process.execPath, [CLI, '--mode', mode, '--config', configPath], extraEnv);
}

/** The initiator in its node (initiatorToml's options), keys from `env`. */
export function startInitiatorSidecar(t: Teardownable, options: Parameters<typeof initiatorToml>[0], env: NodeJS.ProcessEnv): LineProcess {
  return startSidecar(t, topology.initiatorNode, 'initiator', initiatorToml(options), env);
}

/** The terminator in its node (terminatorToml's options), keys from `env`. */
export function startTerminatorSidecar(t: Teardownable, options: Parameters<typeof terminatorToml>[0], env: NodeJS.ProcessEnv): LineProcess {
  return startSidecar(t, topology.terminatorNode, 'terminator', terminatorToml(options), env);
}

export const isListening = (line: JsonLine): boolean =>
  line['event'] === 'listening' || line['event'] === 'listener_ao_installed';

/** TcpExt TCPAO* counters of a namespace, from /proc/net/netstat. */
export function netnsAoCounters(node: string): Record<string, number> {
  const out = spawnSync('ip', ['netns', 'exec', node, 'cat', '/proc/net/netstat'], { encoding: 'utf8' });
  return parseAoCounters(out.stdout);
}

/** The TcpExt TCPAO* counters in the text of a /proc/net/netstat. */
export function parseAoCounters(netstat: string): Record<string, number> {
  const lines = netstat.split('\n').filter((line) => line.startsWith('TcpExt:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1);
  const counters: Record<string, number> = {};
  names.forEach((counterName, index) => {
    if (counterName.startsWith('TCPAO')) counters[counterName] = Number(values[index]);
  });
  return counters;
}

/** Every encoding of a key the config accepts, to scan output for. */
export function keyEncodings(key: string): string[] {
  const bytes = Buffer.from(key, 'utf8');
  return [key, bytes.toString('hex'), bytes.toString('hex').toUpperCase(), bytes.toString('base64'), bytes.toString('base64url')];
}
