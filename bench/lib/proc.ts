/**
 * Process plumbing for the benchmark orchestrators: start a helper process,
 * wait for its JSON event lines, and read the memory of a process tree.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..', '..');
export const PEER_SCRIPT = join(REPO, 'dist', 'bench', 'peer.js');
export const HARNESS_SCRIPT = join(REPO, 'dist', 'bench', 'relay-harness.js');

export type JsonEvent = Record<string, unknown>;

/** Generous: under the kernel lab's TCG emulation a Node process needs seconds just to start. */
export const STEP_TIMEOUT_MS = 900_000;

/** A child whose stdout carries one JSON object per line. */
export class Helper {
  readonly events: JsonEvent[] = [];
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: { match: (event: JsonEvent) => boolean; resolve: (event: JsonEvent) => void }[] = [];

  constructor(readonly name: string, readonly child: ChildProcess) {
    let buffered = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.output.push(text);
      buffered += text;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        this.#accept(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (text: string) => this.output.push(text));
    this.exited = new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid`);
    return this.child.pid;
  }

  #accept(line: string): void {
    let event: JsonEvent;
    try {
      event = JSON.parse(line) as JsonEvent;
    } catch {
      return;
    }
    this.events.push(event);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.match(event)) return true;
      waiter.resolve(event);
      return false;
    });
  }

  /** The first event (already seen or future) whose `event` field is `name`. */
  waitFor(name: string, timeoutMs = STEP_TIMEOUT_MS): Promise<JsonEvent> {
    const match = (event: JsonEvent) => event['event'] === name;
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolveEvent, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no "${name}" event within ${timeoutMs} ms; output:\n${this.output.join('')}`)),
        timeoutMs,
      );
      this.#waiters.push({
        match,
        resolve: (event) => {
          clearTimeout(timer);
          resolveEvent(event);
        },
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}) before "${name}"; output:\n${this.output.join('')}`));
      });
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function startHelper(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Helper {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  return new Helper(name, child);
}

/** Starts dist/bench/peer.js with one role; its arguments travel as one JSON argument (never key bytes). */
export function startPeer(name: string, args: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = {}): Helper {
  return startHelper(name, process.execPath, [PEER_SCRIPT, JSON.stringify(args)], {
    env: { ...process.env, ...env },
  });
}

/** Runs a client role to completion and returns its "result" event. */
export async function runPeer(
  name: string,
  args: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = STEP_TIMEOUT_MS,
): Promise<JsonEvent> {
  const peer = startPeer(name, args, env);
  try {
    return await peer.waitFor('result', timeoutMs);
  } finally {
    await peer.stop();
  }
}

/** A TCP port that was free a moment ago (for programs that need a fixed port in their config). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const address = server.address();
      const port = address !== null && typeof address === 'object' ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

/** The pid and all its descendants (socat forks one child per connection). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const parent = parentOf(pid);
    if (parent === undefined) continue;
    children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function kibField(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

export interface TreeMemory {
  readonly processes: number;
  /** Sum of VmRSS over the tree (counts shared pages once per process). */
  readonly rssKib: number;
  /** Sum of Pss over the tree (shared pages split between their users). */
  readonly pssKib: number;
}

export function treeMemory(root: number): TreeMemory {
  let rssKib = 0;
  let pssKib = 0;
  let processes = 0;
  for (const pid of processTree(root)) {
    try {
      rssKib += kibField(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
      pssKib += kibField(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
      processes += 1;
    } catch {
      // The process exited between listing and reading; it holds no connection.
    }
  }
  return { processes, rssKib, pssKib };
}

/**
 * CPU time (user + system, seconds) of a process tree so far, including
 * children it has already reaped (socat's finished per-connection forks).
 */
export function treeCpuSeconds(root: number): number {
  const ticksPerSecond = 100;
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      // Exited meanwhile.
    }
  }
  return ticks / ticksPerSecond;
}
