/**
 * A plain TCP connection handler for createProxyServer, for unit tests and host
 * benchmarks only: it lives under test/ so neither the shipped CLI nor any
 * config can select it (the sidecar never relays without TCP-AO). It opens the
 * upstream leg the way the terminator dials its local app: paused, half-open
 * allowed, bounded by the connect timeout.
 */
import { connect } from 'node:net';

import type { AoInfo } from '../../src/native/index.js';
import { ConnectionRefused, type ConnectionHandler, type OpenedLegs } from '../../src/proxy/server.js';

export interface PlainTarget {
  readonly host: string;
  readonly port: number;
}

export interface PlainHandlerOptions {
  readonly connectTimeoutMs: number;
  /** Stream buffer size of the upstream leg instead of Node's default (a bench what-if knob). */
  readonly highWaterMark?: number;
}

/** Dials the target for every accepted client; a target that does not answer is `app_unreachable`. */
export function createPlainHandler(target: PlainTarget, options: PlainHandlerOptions): ConnectionHandler {
  return {
    readAoInfo(): AoInfo {
      // The relay keeps no AO counters for a leg that has none; it catches this.
      throw new Error('a plain TCP leg has no TCP-AO state');
    },
    open: () => connectPlain(target, options),
  };
}

function connectPlain(target: PlainTarget, options: PlainHandlerOptions): Promise<OpenedLegs> {
  return new Promise((resolve, reject) => {
    const upstream = connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark }),
    });
    upstream.pause();
    const unreachable = (detail: string) =>
      new ConnectionRefused('app_unreachable', `${target.host}:${target.port} is not reachable: ${detail}`);
    const timer = setTimeout(() => {
      upstream.destroy();
      reject(unreachable(`no answer within ${options.connectTimeoutMs} ms`));
    }, options.connectTimeoutMs);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.removeAllListeners('error');
      resolve({ upstream, wire: upstream, wireFd: -1, context: {} });
    });
    upstream.once('error', (error) => {
      clearTimeout(timer);
      reject(unreachable(error.message));
    });
  });
}
