/**
 * The relay (relay.ts's contract) on the addon's epoll thread: half-close both
 * ways, backpressure, the idle timeout, reset on error, byte counts and abort,
 * without a byte crossing the JS heap. It is the only data path.
 *
 * Hand-off: the addon duplicates both sockets' fds (F_DUPFD_CLOEXEC) and the
 * net.Sockets are then destroyed. Destroying a socket makes libuv drop the fd
 * from its epoll set and close it; the connection lives on in the duplicate,
 * which only the relay thread reads and writes. No FIN or RST is sent by that
 * close, because another fd still refers to the socket. Bytes Node already
 * read from a leg (an app that speaks first, such as a BGP OPEN) go with the
 * hand-off and are written to the other leg before anything new. A socket
 * with a write still queued in Node, or more read ahead than one relay
 * buffer, is not handed off: canHandOff() says so and the caller refuses the
 * connection.
 */
import type { Socket } from 'node:net';

import {
  defaultRelayEngine,
  RELAY_EARLY_MAX_BYTES,
  socketFd,
  type NativeRelayEnd,
  type NativeRelayEngine,
} from '../native/index.js';
import type { Relay, RelayEndReason, RelayOptions, RelayResult } from './relay.js';

export interface NativeRelayOptions extends RelayOptions {
  /** The addon's relay; tests may inject one. */
  readonly engine?: NativeRelayEngine;
}

/** True when both sockets are connected and open, queue no write in Node, and read ahead at most one relay buffer. */
export function canHandOff(client: Socket, upstream: Socket): boolean {
  return [client, upstream].every((leg) => {
    if (leg.destroyed || leg.connecting || leg.writableLength > 0 || leg.readableLength > RELAY_EARLY_MAX_BYTES) return false;
    try {
      socketFd(leg);
      return true;
    } catch {
      return false;
    }
  });
}

/** The bytes Node read ahead on @leg, taken out of its buffer; undefined when there are none. */
function takeReadAhead(leg: Socket): Buffer | undefined {
  const chunks: Buffer[] = [];
  while (leg.readableLength > 0) {
    const chunk: unknown = leg.read();
    if (!Buffer.isBuffer(chunk)) break;
    chunks.push(chunk);
  }
  if (leg.readableLength > 0) {
    // Put back what was taken: the sockets stay as they were when the hand-off fails.
    for (const chunk of chunks.reverse()) leg.unshift(chunk);
    throw new Error('a socket holds read-ahead bytes that are not a Buffer');
  }
  return chunks.length === 0 ? undefined : Buffer.concat(chunks);
}

const REASONS: Readonly<Record<NativeRelayEnd['kind'], RelayEndReason>> = {
  closed: 'closed',
  idle_timeout: 'idle_timeout',
  client_error: 'client_error',
  upstream_error: 'upstream_error',
  aborted: 'shutdown',
};

/**
 * Relays @client and @upstream natively. Throws (and leaves both sockets as they
 * were) when the hand-off fails; on success both sockets are destroyed.
 */
export function startNativeRelay(client: Socket, upstream: Socket, options: NativeRelayOptions): Relay {
  const engine = options.engine ?? defaultRelayEngine();
  const startedAt = Date.now();
  let settle: (result: RelayResult) => void = () => undefined;
  const done = new Promise<RelayResult>((resolve) => {
    settle = resolve;
  });
  let final: RelayResult | undefined;
  let abortReason: RelayEndReason | undefined;

  const onEnd = (end: NativeRelayEnd) => {
    try {
      options.beforeClose?.();
    } finally {
      // The fds close only now, after the counters were read.
      engine.release(handle.id, abortReason !== undefined);
    }
    final = {
      reason: abortReason ?? REASONS[end.kind],
      bytesClientToUpstream: end.clientToUpstream,
      bytesUpstreamToClient: end.upstreamToClient,
      durationMs: Date.now() - startedAt,
      ...(end.error === undefined ? {} : { error: end.error }),
    };
    settle(final);
  };

  const clientFd = socketFd(client);
  const upstreamFd = socketFd(upstream);
  let clientEarly: Buffer | undefined;
  let upstreamEarly: Buffer | undefined;
  let handle: ReturnType<NativeRelayEngine['add']>;
  try {
    clientEarly = takeReadAhead(client);
    upstreamEarly = takeReadAhead(upstream);
    handle = engine.add(clientFd, upstreamFd, options.idleTimeoutMs, onEnd, {
      ...(clientEarly === undefined ? {} : { client: clientEarly }),
      ...(upstreamEarly === undefined ? {} : { upstream: upstreamEarly }),
    });
  } catch (error) {
    // Leave the sockets as they were for the caller to reset.
    if (clientEarly !== undefined) client.unshift(clientEarly);
    if (upstreamEarly !== undefined) upstream.unshift(upstreamEarly);
    throw error;
  }
  client.destroy();
  upstream.destroy();

  return {
    done,
    startedAt,
    legFds: { client: handle.clientFd, upstream: handle.upstreamFd },
    bytes: () =>
      final === undefined
        ? engine.bytes(handle.id)
        : { clientToUpstream: final.bytesClientToUpstream, upstreamToClient: final.bytesUpstreamToClient },
    abort(reason: RelayEndReason) {
      if (final !== undefined || abortReason !== undefined) return;
      abortReason = reason;
      engine.abort(handle.id);
    },
  };
}
