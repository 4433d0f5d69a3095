/**
 * The optional observability listener: GET /metrics (Prometheus text) and
 * GET /status (JSON). Off unless [global] metrics_listen is set; both pages
 * are built from the sockets at request time and never hold key bytes.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';

import { formatEndpoint, isLoopback, type Endpoint } from '../config/address.js';
import { TcpAoError } from '../errors.js';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js';
import type { SidecarStatus } from './status.js';

export interface ObservabilityLimits {
  /** Connections served at once; more are closed as they arrive. */
  readonly maxConnections: number;
  /** A connection with no traffic for this long is closed. */
  readonly idleTimeoutMs: number;
}

/** A scraper needs one connection, a person with curl another; the rest are refused so they cannot use up fds. */
export const OBSERVABILITY_LIMITS: ObservabilityLimits = { maxConnections: 16, idleTimeoutMs: 10_000 };

export interface ObservabilityServer {
  readonly server: Server;
  address(): { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

export async function startObservability(
  listen: Endpoint,
  status: () => SidecarStatus,
  log: Logger,
  limits: ObservabilityLimits = OBSERVABILITY_LIMITS,
): Promise<ObservabilityServer> {
  const server = createServer(
    {
      // Slow or silent clients are cut off: the header and request deadlines are checked every second.
      headersTimeout: limits.idleTimeoutMs,
      requestTimeout: limits.idleTimeoutMs,
      keepAliveTimeout: Math.min(5_000, limits.idleTimeoutMs),
      connectionsCheckingInterval: Math.min(1_000, limits.idleTimeoutMs),
    },
    (request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
        return;
      }
      try {
        if (path === '/metrics') {
          const body = renderMetrics(status());
          response.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
          response.end(request.method === 'HEAD' ? undefined : body);
          return;
        }
        if (path === '/status') {
          const body = `${JSON.stringify(status(), null, 2)}\n`;
          response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          response.end(request.method === 'HEAD' ? undefined : body);
          return;
        }
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: use /metrics or /status\n');
      } catch (error) {
        log.error({ event: 'status_failed', path }, `cannot build ${path}: ${error instanceof Error ? error.message : String(error)}`);
        response.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      }
    },
  );
  server.maxConnections = limits.maxConnections;
  // A connection that sends nothing at all is closed after the idle time too (the socket timeout's default action).
  server.setTimeout(limits.idleTimeoutMs);
  let dropped = 0;
  let warned = false;
  server.on('connection', () => {
    warned = false;
  });
  server.on('drop', () => {
    dropped += 1;
    // One line per burst: the next accepted connection ends the burst.
    if (warned) return;
    warned = true;
    log.warn(
      { event: 'metrics_connection_refused', limit: limits.maxConnections, refusedSinceStart: dropped },
      `metrics listener refused a connection: ${limits.maxConnections} already open`,
    );
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(
        new TcpAoError(
          'ERR_TCPAO_METRICS_LISTEN',
          `cannot listen on metrics_listen ${formatEndpoint(listen)}: ${error.code ?? error.message}; pick a free local port or leave metrics_listen out`,
          { cause: error, ...(error.code === undefined ? {} : { sysCode: error.code }) },
        ),
      );
    server.once('error', onError);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Errors after listen (an accept that fails) must not end the sidecar.
  server.on('error', (error: NodeJS.ErrnoException) =>
    log.error({ event: 'metrics_error', code: error.code, syscall: error.syscall }, `metrics listener error (${error.code ?? error.message}); still serving`),
  );
  const address = () => {
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new Error('metrics listener has no address');
    return { host: bound.address, port: bound.port };
  };
  log.info(
    { event: 'metrics_listening', address: `${address().host}:${address().port}`, maxConnections: limits.maxConnections, idleTimeoutMs: limits.idleTimeoutMs },
    'serving /metrics and /status',
  );
  if (!isLoopback(listen.host, listen.family)) {
    log.warn(
      { event: 'metrics_not_loopback', address: formatEndpoint(listen) },
      'metrics_allow_remote is set: /metrics and /status are served beyond this host without authentication',
    );
  }
  return {
    server,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
