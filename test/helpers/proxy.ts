/**
 * The proxy server on plain TCP for unit tests: a JSON log capture, a local
 * app the test drives, and createProxyServer with the plain handler in front of it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';

import pino from 'pino';
import type { Test } from 'tap';

import {
  createProxyServer,
  type ConnectionHandler,
  type ProxyServer,
  type ProxyServerOptions,
} from '../../src/proxy/server.js';
import { createPlainHandler } from './plain-handler.js';

export type LogLine = Record<string, unknown>;
export type RelaySettings = ProxyServerOptions['relay'];

/** A pino logger whose lines are parsed back as JSON, as an operator's log shipper would. */
export function captureLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** Settings with keepalive off, no idle timeout and caps high enough not to matter, before the test's overrides. */
export function relaySettings(overrides: Partial<RelaySettings> = {}): RelaySettings {
  return {
    listenBacklog: 16,
    idleTimeoutMs: 0,
    connectTimeoutMs: 2_000,
    maxConnections: 100,
    maxConnectionsPerPeer: 100,
    keepalive: { enabled: false, idleSecs: 1, intervalSecs: 1, probes: 1 },
    ...overrides,
  };
}

/** Listens on 127.0.0.1 on a free port; closed at teardown. */
export function listen(t: Test, server: Server): Promise<number> {
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) => {
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const bound = server.address();
      resolve(typeof bound === 'object' && bound !== null ? bound.port : 0);
    });
  });
}

/** A local app whose accepted sockets the test receives in order; every one is destroyed at teardown. */
export async function appServer(
  t: Test,
  onConnection: (socket: Socket) => void = () => undefined,
): Promise<{ port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(socket);
    socket.on('error', () => socket.destroy());
    onConnection(socket);
  });
  t.teardown(() => {
    for (const socket of accepted) socket.destroy();
  });
  return { port: await listen(t, server), accepted };
}

/** An app that echoes every byte back. */
export function echoApp(t: Test): Promise<{ port: number; accepted: Socket[] }> {
  return appServer(t, (socket) => socket.pipe(socket));
}

export interface RunningProxy {
  readonly proxy: ProxyServer;
  readonly port: number;
  readonly lines: LogLine[];
}

/** createProxyServer in front of the app at appPort, through the plain handler unless the test wraps it. */
export async function startPlainProxy(
  t: Test,
  appPort: number,
  overrides: Partial<RelaySettings> = {},
  wrap: (handler: ConnectionHandler) => ConnectionHandler = (handler) => handler,
  extra: Pick<ProxyServerOptions, 'nativeRelay'> = {},
): Promise<RunningProxy> {
  const { log, lines } = captureLog();
  const relay = relaySettings(overrides);
  const proxy = createProxyServer({
    relay,
    log,
    handler: wrap(createPlainHandler({ host: '127.0.0.1', port: appPort }, relay)),
    binding: { setKeepalive: () => undefined, socketFd: () => -1 },
    ...extra,
  });
  t.teardown(() => proxy.sessions.abortAll('shutdown'));
  return { proxy, port: await listen(t, proxy.server), lines };
}
