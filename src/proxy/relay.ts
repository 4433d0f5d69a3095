import type { Socket } from 'node:net';

/** Why a relay ended; stable strings, used in logs and metrics. */
export type RelayEndReason =
  | 'closed'
  | 'idle_timeout'
  | 'client_error'
  | 'upstream_error'
  | 'shutdown';

export interface RelayOptions {
  /** Close both legs after this long without traffic either way; 0 disables. */
  readonly idleTimeoutMs: number;
  /**
   * Runs before either leg is reset, while both file descriptors are still open.
   * The native relay runs it at every end, clean or not, before it closes the fds.
   */
  readonly beforeAbort?: () => void;
}

export interface RelayResult {
  readonly reason: RelayEndReason;
  /** Bytes read from the client leg and written to the upstream leg. */
  readonly bytesClientToUpstream: number;
  /** Bytes read from the upstream leg and written to the client leg. */
  readonly bytesUpstreamToClient: number;
  readonly durationMs: number;
  readonly error?: Error;
}

export interface Relay {
  readonly done: Promise<RelayResult>;
  readonly startedAt: number;
  bytes(): { readonly clientToUpstream: number; readonly upstreamToClient: number };
  /** Ends the relay at once, resetting both legs so the peers know data was cut. */
  abort(reason: RelayEndReason): void;
  /**
   * The fds the relay holds for each leg, when they differ from the sockets' own
   * (the native relay works on duplicates and destroys the sockets). Open until `done` settles.
   */
  readonly legFds?: { readonly client: number; readonly upstream: number };
}

/**
 * Relays two connected sockets both ways. Backpressure comes from pipe(): a leg
 * that stops reading pauses the other leg's reads once the write buffer fills.
 * A FIN on one leg becomes a FIN on the other after its data (half-close); the
 * relay ends when both legs are closed. An error on one leg resets the other.
 */
export function startRelay(client: Socket, upstream: Socket, options: RelayOptions): Relay {
  const startedAt = Date.now();
  let settle: (result: RelayResult) => void = () => undefined;
  const done = new Promise<RelayResult>((resolve) => {
    settle = resolve;
  });
  let finished = false;
  let endReason: RelayEndReason = 'closed';
  let endError: Error | undefined;
  let openLegs = 2;

  const bytes = () => ({
    clientToUpstream: upstream.bytesWritten,
    upstreamToClient: client.bytesWritten,
  });

  const finish = () => {
    if (finished) return;
    finished = true;
    const counted = bytes();
    settle({
      reason: endReason,
      bytesClientToUpstream: counted.clientToUpstream,
      bytesUpstreamToClient: counted.upstreamToClient,
      durationMs: Date.now() - startedAt,
      ...(endError === undefined ? {} : { error: endError }),
    });
  };

  const abort = (reason: RelayEndReason, error?: Error) => {
    if (finished || endReason !== 'closed') return;
    endReason = reason;
    endError = error;
    options.beforeAbort?.();
    for (const leg of [client, upstream]) {
      if (!leg.destroyed) leg.resetAndDestroy();
    }
  };

  const onLegClosed = () => {
    openLegs -= 1;
    if (openLegs === 0) finish();
  };

  const wireLeg = (leg: Socket, other: Socket, errorReason: RelayEndReason) => {
    leg.on('error', (error: Error) => abort(errorReason, error));
    leg.once('close', () => {
      // A leg that closed without a clean FIN exchange cuts the other one too.
      if (!other.destroyed && !(leg.readableEnded && leg.writableFinished)) {
        abort(errorReason === 'client_error' ? 'client_error' : 'upstream_error');
      }
      onLegClosed();
    });
    if (options.idleTimeoutMs > 0) {
      leg.setTimeout(options.idleTimeoutMs, () => abort('idle_timeout'));
    }
  };

  wireLeg(client, upstream, 'client_error');
  wireLeg(upstream, client, 'upstream_error');
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
  upstream.resume();

  return { done, startedAt, bytes, abort: (reason) => abort(reason) };
}
