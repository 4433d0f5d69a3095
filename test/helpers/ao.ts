/**
 * Shared helpers for tests that need a kernel with TCP-AO: the capability
 * check (skip with the reason, or fail under TCPAO_REQUIRE_AO=1) and small
 * socket utilities around the real addon.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

import type { Test } from 'tap';

import { defaultBinding, type AoConnectOptions, type AoKeySpec, type AoListenOptions } from '../../src/native/index.js';

const binding = defaultBinding();

export interface AoSupport {
  readonly supported: boolean;
  readonly reason: string;
}

let cachedSupport: AoSupport | undefined;

/** Whether this kernel (and the built addon) can do TCP-AO, with the reason if not. */
export function aoSupport(): AoSupport {
  if (cachedSupport !== undefined) return cachedSupport;
  try {
    const probe = binding.probeTcpAo();
    cachedSupport = probe.supported
      ? { supported: true, reason: 'the kernel has TCP-AO' }
      : { supported: false, reason: `${probe.reason} (${probe.code})` };
  } catch (err) {
    cachedSupport = { supported: false, reason: `TCP-AO probe failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  return cachedSupport;
}

/** True when TCPAO_REQUIRE_AO=1: a missing TCP-AO kernel is a failure, not a skip. */
export function aoRequired(): boolean {
  return process.env['TCPAO_REQUIRE_AO'] === '1';
}

/**
 * Returns true when the test can use TCP-AO. Otherwise records a skip with
 * the reason (or a failure when TCPAO_REQUIRE_AO=1) and returns false; the
 * caller then returns at once.
 */
export function skipUnlessAo(t: Test): boolean {
  const support = aoSupport();
  if (support.supported) return true;
  if (aoRequired()) {
    t.fail(`TCPAO_REQUIRE_AO=1 but TCP-AO is unavailable: ${support.reason}`);
  } else {
    t.pass('needs a kernel with TCP-AO', { skip: support.reason });
  }
  return false;
}

/** Number of open file descriptors of this process. */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

export function testKey(overrides: Partial<AoKeySpec> = {}): AoKeySpec {
  return {
    peer: '127.0.0.1',
    sendId: 100,
    recvId: 101,
    algorithm: 'hmac-sha256',
    key: Buffer.from('tcpao-test-secret-0123456789'),
    ...overrides,
  };
}

/** The key the other end needs: ids swapped, the same secret. */
export function mirrorKey(key: AoKeySpec, peer: string): AoKeySpec {
  return { ...key, peer, sendId: key.recvId, recvId: key.sendId };
}

export interface AoListener {
  readonly server: net.Server;
  readonly fd: number;
  readonly port: number;
}

/** An AO listener served by net.Server, closed at teardown. */
export async function listenAo(t: Test, opts: Omit<AoListenOptions, 'port'> & { port?: number }): Promise<AoListener> {
  const fd = binding.createAoListener({ port: 0, ...opts });
  const server = net.createServer();
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no port');
  return { server, fd, port: address.port };
}

/** A plain (non-AO) listener on host, closed at teardown. */
export async function listenPlain(t: Test, host: string): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer();
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no port');
  return { server, port: address.port };
}

/** The next connection the server accepts, destroyed at teardown. */
export function nextConnection(t: Test, server: net.Server): Promise<net.Socket> {
  return new Promise((resolve) => {
    server.once('connection', (sock: net.Socket) => {
      t.teardown(() => sock.destroy());
      resolve(sock);
    });
  });
}

/** connectAo, wrapped in a net.Socket destroyed at teardown. */
export async function connectAoSocket(t: Test, opts: AoConnectOptions): Promise<net.Socket> {
  const fd = await binding.connectAo(opts);
  const sock = new net.Socket({ fd, readable: true, writable: true });
  t.teardown(() => sock.destroy());
  return sock;
}

/** Writes `data` and resolves with the first `length` bytes that come back on `from`. */
export function readBytes(from: net.Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= length) {
        from.off('data', onData);
        from.off('error', reject);
        from.pause();
        resolve(Buffer.concat(chunks).subarray(0, length));
      }
    };
    from.on('data', onData);
    from.once('error', reject);
    from.resume();
  });
}

/** Sends `payload` one way and checks it arrives intact. */
export async function sendAndReceive(from: net.Socket, to: net.Socket, payload: Buffer): Promise<Buffer> {
  const received = readBytes(to, payload.length);
  from.write(payload);
  return received;
}
