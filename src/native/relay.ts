/**
 * The typed face of the native relay (native/relay.h): hands two connected
 * fds to the addon's epoll thread and brings each end back as one callback
 * on the JS thread. The fds stay open after the end until release(), so the
 * caller can still read the wire socket's AO counters (and rotation can
 * still reach it) before they are closed.
 */
import { fromNativeError } from './errors.js';
import { loadRelayAddon } from './load.js';
import type { NativeRelayAddon, NativeRelayEndKind, NativeRelayStats } from './types.js';

export interface NativeRelayEnd {
  readonly kind: NativeRelayEndKind;
  readonly clientToUpstream: number;
  readonly upstreamToClient: number;
  /** The failed syscall's error (code, errno, syscall) for the error kinds. */
  readonly error?: Error;
}

/** The relay's own copies of the two fds; valid until release(). */
export interface NativeRelayHandle {
  readonly id: number;
  readonly clientFd: number;
  readonly upstreamFd: number;
}

/** Bytes already read from a leg before the hand-off, relayed ahead of anything new. */
export interface NativeRelayEarlyBytes {
  readonly client?: Uint8Array;
  readonly upstream?: Uint8Array;
}

export interface NativeRelayEngine {
  /** Relays duplicates of both fds; the caller then closes its own (destroys its sockets). */
  add(
    clientFd: number,
    upstreamFd: number,
    idleMs: number,
    onEnd: (end: NativeRelayEnd) => void,
    early?: NativeRelayEarlyBytes,
  ): NativeRelayHandle;
  abort(id: number): void;
  bytes(id: number): { readonly clientToUpstream: number; readonly upstreamToClient: number };
  release(id: number, reset: boolean): void;
  /** What the relay holds right now, across the process. */
  stats(): NativeRelayStats;
}

export interface RelayEngineOptions {
  /** Bulk directions move through a pipe with splice(2) instead of a user-space buffer. */
  readonly splice: boolean;
}

/** Builds the engine over an addon; @load runs on first use. */
export function createRelayEngine(load: () => NativeRelayAddon, options: RelayEngineOptions = { splice: true }): NativeRelayEngine {
  let addon: NativeRelayAddon | undefined;
  const waiting = new Map<number, (end: NativeRelayEnd) => void>();
  const native = (): NativeRelayAddon => {
    if (addon !== undefined) return addon;
    const loaded = load();
    loaded.relayInit((id, kind, clientToUpstream, upstreamToClient, error) => {
      const onEnd = waiting.get(id);
      waiting.delete(id);
      try {
        onEnd?.({ kind, clientToUpstream, upstreamToClient, ...(error === undefined ? {} : { error }) });
      } catch (thrown) {
        // Never let a JS exception unwind into the addon's callback; surface it as uncaught instead.
        process.nextTick(() => {
          throw thrown;
        });
      }
    }, { splice: options.splice });
    addon = loaded;
    return addon;
  };
  const call = <T>(context: string, fn: (a: NativeRelayAddon) => T): T => {
    const a = native();
    try {
      return fn(a);
    } catch (err) {
      throw fromNativeError(err, context);
    }
  };
  return {
    add(clientFd, upstreamFd, idleMs, onEnd, early = {}) {
      const handle = call(`relayAdd fds ${clientFd}, ${upstreamFd}`, (a) =>
        a.relayAdd(clientFd, upstreamFd, idleMs, early.client, early.upstream),
      );
      waiting.set(handle.id, onEnd);
      return handle;
    },
    abort: (id) => call(`relayAbort ${id}`, (a) => a.relayAbort(id)),
    bytes(id) {
      const [clientToUpstream, upstreamToClient] = call(`relayBytes ${id}`, (a) => a.relayBytes(id));
      return { clientToUpstream, upstreamToClient };
    },
    release: (id, reset) => call(`relayRelease ${id}`, (a) => a.relayRelease(id, reset)),
    stats: () => call('relayStats', (a) => a.relayStats()),
  };
}

let sharedEngine: NativeRelayEngine | undefined;

/** The engine over build/Release/tcpao.node, loaded on first use; the options count on the first call only. */
export function defaultRelayEngine(options?: RelayEngineOptions): NativeRelayEngine {
  sharedEngine ??= createRelayEngine(() => loadRelayAddon(), options);
  return sharedEngine;
}
