/**
 * startRelay's contract (relay.ts) on the addon's epoll thread: the same
 * half-close, backpressure, idle timeout, reset on error, byte counts and
 * abort, without a byte crossing the JS heap.
 *
 * Hand-off: the addon duplicates both sockets' fds (F_DUPFD_CLOEXEC) and the
 * net.Sockets are then destroyed. Destroying a socket makes libuv drop the fd
 * from its epoll set and close it; the connection lives on in the duplicate,
 * which only the relay thread reads and writes. No FIN or RST is sent by that
 * close, because another fd still refers to the socket. Sockets with bytes
 * buffered in Node (read ahead, or a write still queued) are not handed off:
 * canHandOff() says so and the caller keeps the JS relay for them.
 */
import type { Socket } from 'node:net';

import { defaultRelayEngine, socketFd, type NativeRelayEnd, type NativeRelayEngine } from '../native/index.js';
import type { Relay, RelayEndReason, RelayOptions, RelayResult } from './relay.js';

export interface NativeRelayOptions extends RelayOptions {
  /** The addon's relay; tests may inject one. */
  readonly engine?: NativeRelayEngine;
}

/** True when both sockets are connected, open, and hold no bytes in Node's own buffers. */
export function canHandOff(client: Socket, upstream: Socket): boolean {
  return [client, upstream].every((leg) => {
    if (leg.destroyed || leg.connecting || leg.readableLength > 0 || leg.writableLength > 0) return false;
    try {
      socketFd(leg);
      return true;
    } catch {
      return false;
    }
  });
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
      options.beforeAbort?.();
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

  const handle = engine.add(socketFd(client), socketFd(upstream), options.idleTimeoutMs, onEnd);
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
