/**
 * The benchmark's end points, one role per process so the load generator
 * never shares a CPU queue with the proxy it measures:
 *   backend   sink and echo listeners (plain, or TCP-AO with `ao`)
 *   send      bulk transfer to a sink; result: bytes and seconds
 *   rtt       64-byte ping-pong over one connection; result: latency percentiles
 *   connrate  connect, 1-byte echo, close, by `concurrency` workers; result: connections/s
 *   idle      opens `connections` echo-verified connections, says "ready", holds them
 * Arguments come as one JSON argument. The AO key (if any) comes from env BENCH_AO_KEY.
 * Each process prints JSON event lines on stdout.
 */
import { once } from 'node:events';
import { createServer, Socket, type Server } from 'node:net';

import { defaultBinding, type AoKeySpec, type MacAlgorithm } from '../src/native/index.js';

const binding = defaultBinding();

interface AoArgs {
  readonly peer: string;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: MacAlgorithm;
}

interface PeerArgs {
  readonly role: 'backend' | 'send' | 'rtt' | 'connrate' | 'idle';
  readonly host: string;
  readonly port?: number;
  readonly ao?: AoArgs;
  readonly bytes?: number;
  readonly size?: number;
  readonly count?: number;
  readonly warmup?: number;
  readonly concurrency?: number;
  readonly durationMs?: number;
  readonly connections?: number;
  /** Connect and echo timeout; emulated labs need more than the default. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const SEND_CHUNK_BYTES = 256 * 1024;
const HEADER_BYTES = 8;

function emit(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function aoKey(ao: AoArgs): AoKeySpec {
  const secret = process.env['BENCH_AO_KEY'];
  if (secret === undefined || secret === '') throw new Error('BENCH_AO_KEY is not set; the AO roles need it');
  return { peer: ao.peer, sendId: ao.sendId, recvId: ao.recvId, algorithm: ao.algorithm, key: Buffer.from(secret) };
}

function requirePort(args: PeerArgs): number {
  if (args.port === undefined) throw new Error(`role ${args.role} needs a port`);
  return args.port;
}

/** A connected socket to host:port, over TCP-AO when `ao` is given. */
async function open(args: PeerArgs): Promise<Socket> {
  const port = requirePort(args);
  if (args.ao !== undefined) {
    const fd = await binding.connectAo({ host: args.host, port, keys: [aoKey(args.ao)], timeoutMs: args.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    const socket = new Socket({ fd, readable: true, writable: true });
    socket.setNoDelay(true);
    return socket;
  }
  const socket = new Socket();
  socket.setNoDelay(true);
  const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), args.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  try {
    socket.connect({ host: args.host, port });
    await once(socket, 'connect');
  } finally {
    clearTimeout(timer);
  }
  return socket;
}

/** Reads an 8-byte length, then that many bytes, then answers one byte. */
function serveSink(socket: Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  let header = Buffer.alloc(0);
  let expected = -1;
  let received = 0;
  let acked = false;
  socket.on('data', (chunk: Buffer) => {
    if (expected < 0) {
      header = Buffer.concat([header, chunk]);
      if (header.length < HEADER_BYTES) return;
      expected = Number(header.readBigUInt64BE(0));
      received = header.length - HEADER_BYTES;
    } else {
      received += chunk.length;
    }
    if (!acked && received >= expected) {
      acked = true;
      socket.write('k');
    }
  });
}

function serveEcho(socket: Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => socket.write(chunk));
}

async function listen(args: PeerArgs, serve: (socket: Socket) => void): Promise<number> {
  const server: Server = createServer({ noDelay: true }, serve);
  const listening = once(server, 'listening');
  if (args.ao !== undefined) {
    server.listen({ fd: binding.createAoListener({ host: args.host, port: 0, keys: [aoKey(args.ao)], backlog: 4_096 }) });
  } else {
    server.listen({ host: args.host, port: 0, backlog: 4_096 });
  }
  await listening;
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no port');
  return address.port;
}

async function backend(args: PeerArgs): Promise<void> {
  const sinkPort = await listen(args, serveSink);
  const echoPort = await listen(args, serveEcho);
  emit('listening', { sinkPort, echoPort, ao: args.ao !== undefined });
}

async function send(args: PeerArgs): Promise<void> {
  const bytes = args.bytes ?? 1024 ** 3;
  const socket = await open(args);
  const acked = once(socket, 'data');
  const chunk = Buffer.alloc(SEND_CHUNK_BYTES, 0x5a);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeBigUInt64BE(BigInt(bytes));
  const started = process.hrtime.bigint();
  socket.write(header);
  for (let sent = 0; sent < bytes; ) {
    const length = Math.min(chunk.length, bytes - sent);
    sent += length;
    if (!socket.write(length === chunk.length ? chunk : chunk.subarray(0, length))) await once(socket, 'drain');
  }
  await acked;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  socket.destroy();
  emit('result', { bytes, seconds, gbitPerSec: (bytes * 8) / seconds / 1e9 });
}

function percentile(sorted: readonly number[], fraction: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

async function rtt(args: PeerArgs): Promise<void> {
  const size = args.size ?? 64;
  const count = args.count ?? 5_000;
  const warmup = args.warmup ?? 500;
  const socket = await open(args);
  const payload = Buffer.alloc(size, 0x61);
  let buffered = 0;
  let answered: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.length;
    if (buffered >= size && answered !== undefined) {
      buffered -= size;
      const resolveRound = answered;
      answered = undefined;
      resolveRound();
    }
  });
  const samplesUs: number[] = [];
  for (let round = 0; round < warmup + count; round += 1) {
    const started = process.hrtime.bigint();
    await new Promise<void>((resolveRound) => {
      answered = resolveRound;
      socket.write(payload);
    });
    if (round >= warmup) samplesUs.push(Number(process.hrtime.bigint() - started) / 1_000);
  }
  socket.destroy();
  samplesUs.sort((a, b) => a - b);
  emit('result', {
    size,
    count,
    p50Us: percentile(samplesUs, 0.5),
    p90Us: percentile(samplesUs, 0.9),
    p99Us: percentile(samplesUs, 0.99),
    maxUs: samplesUs[samplesUs.length - 1],
    meanUs: samplesUs.reduce((sum, value) => sum + value, 0) / samplesUs.length,
  });
}

/** Connect, send one byte, wait for its echo, close cleanly and wait for the close. */
async function echoOnce(args: PeerArgs): Promise<Socket> {
  const socket = await open(args);
  const timer = setTimeout(() => socket.destroy(new Error('echo timed out')), args.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  try {
    const echoed = once(socket, 'data');
    socket.write('x');
    await echoed;
  } catch (error) {
    socket.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return socket;
}

async function connrate(args: PeerArgs): Promise<void> {
  const concurrency = args.concurrency ?? 16;
  const durationMs = args.durationMs ?? 5_000;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + durationMs;
  let completed = 0;
  let failed = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      try {
        const socket = await echoOnce(args);
        const closed = once(socket, 'close');
        socket.end();
        await closed;
        completed += 1;
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  emit('result', { concurrency, completed, failed, seconds, connectionsPerSec: completed / seconds });
}

async function idle(args: PeerArgs): Promise<void> {
  const wanted = args.connections ?? 1_000;
  const concurrency = args.concurrency ?? 32;
  const held: Socket[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < wanted) {
      next += 1;
      try {
        const socket = await echoOnce(args);
        socket.on('error', () => undefined);
        held.push(socket);
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  emit('ready', { opened: held.length, failed });
  // Hold the connections until the orchestrator has read the proxy's memory and stops us.
  setInterval(() => undefined, 60_000);
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as PeerArgs;
  process.on('SIGTERM', () => process.exit(0));
  switch (args.role) {
    case 'backend':
      return backend(args);
    case 'send':
      return send(args);
    case 'rtt':
      return rtt(args);
    case 'connrate':
      return connrate(args);
    case 'idle':
      return idle(args);
    default:
      throw new Error(`unknown role ${String(args.role)}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench peer: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
