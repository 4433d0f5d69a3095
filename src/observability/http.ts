/**
 * The optional observability listener: GET /metrics (Prometheus text) and
 * GET /status (JSON). Off unless [global] metrics_listen is set; both pages
 * are built from the sockets at request time and never hold key bytes.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';

import { formatEndpoint, type Endpoint } from '../config/address';
import { TcpAoError } from '../errors';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics';
import type { SidecarStatus } from './status';

export interface ObservabilityServer {
  readonly server: Server;
  address(): { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

export async function startObservability(
  listen: Endpoint,
  status: () => SidecarStatus,
  log: Logger,
): Promise<ObservabilityServer> {
  const server = createServer((request, response) => {
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
  });
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
  const address = () => {
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new Error('metrics listener has no address');
    return { host: bound.address, port: bound.port };
  };
  log.info({ event: 'metrics_listening', address: `${address().host}:${address().port}` }, 'serving /metrics and /status');
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
