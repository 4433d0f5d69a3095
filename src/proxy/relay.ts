/** The relay contract; native-relay.ts implements it on the addon's relay thread. */

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
   * Runs at every end, clean or not, while both file descriptors are still open
   * (the AO counters are read here).
   */
  readonly beforeClose?: () => void;
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
   * The fds the relay holds for each leg: duplicates of the sockets' own, which
   * are destroyed at hand-off. Open until `done` settles.
   */
  readonly legFds: { readonly client: number; readonly upstream: number };
}
