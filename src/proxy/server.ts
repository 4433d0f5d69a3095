import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AoInfo, NativeRelayEngine, TcpAoBinding } from '../native/index.js';
import { canHandOff, startNativeRelay } from './native-relay.js';
import type { Relay, RelayEndReason } from './relay.js';
import { parseSocketAddress } from '../config/address.js';
import type { RelaySettings } from '../policy/plan.js';
import { SessionTracker } from './sessions.js';

/** The two legs of a connection that passed every check, ready to relay. */
export interface OpenedLegs {
  readonly upstream: Socket;
  /** The TCP-AO leg (the upstream for the initiator, the client for the terminator). */
  readonly wire: Socket;
  readonly wireFd: number;
  /** Fields added to the connection's log lines (policy, key ids). */
  readonly context: Readonly<Record<string, unknown>>;
}

/** Why a connection was refused before any byte was relayed. */
export class ConnectionRefused extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly context: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'ConnectionRefused';
  }
}

export interface ConnectionHandler {
  /** Opens the other leg for an accepted client, or throws ConnectionRefused. */
  open(client: Socket, id: number): Promise<OpenedLegs>;
  /** Reads the wire socket's AO state; only called while its fd is open. */
  readAoInfo(fd: number): AoInfo;
}

export interface ProxyServerOptions {
  readonly relay: RelaySettings;
  readonly log: Logger;
  readonly handler: ConnectionHandler;
  readonly binding: Pick<TcpAoBinding, 'setKeepalive' | 'socketFd'>;
  /** Stream buffer size of accepted sockets instead of Node's default; only the relay bench's what-if runs set it. */
  readonly highWaterMark?: number;
  /** The addon's relay (native-relay.ts); defaultRelayEngine() unless injected. */
  readonly nativeRelay?: NativeRelayEngine;
}

/**
 * Every reason a connection is refused before a byte is relayed. /metrics
 * shows each of them, 0 until it happens.
 */
export const REFUSAL_REASONS = [
  'shutting_down',
  'max_connections',
  'max_connections_per_peer',
  'not_authenticated',
  'unknown_peer',
  'retired_key',
  'app_unreachable',
  'wire_connect_timeout',
  'wire_connect_refused',
  'wire_connect_failed',
  'no_key_for_peer',
  'tcpao_unsupported',
  'client_gone',
  'relay_unavailable',
  'internal_error',
] as const;

export interface ProxyServer {
  readonly server: Server;
  readonly sessions: SessionTracker;
  /** Connections refused since start, by reason. */
  refusals(): ReadonlyMap<string, number>;
  /** Accept errors the listener reported (EMFILE, ENFILE, ENOBUFS, ...) since start. */
  acceptErrors(): number;
  /** Connections still being set up (not yet relaying). */
  pendingCount(): number;
  /** Stops accepting; connections that arrive from now on are refused. */
  stopAccepting(): void;
  /** Resets connections still in setup. */
  abortPending(): void;
}

function countersOf(info: AoInfo): Record<string, string | number> {
  return {
    currentKey: info.currentKey,
    rnextKey: info.rnextKey,
    pktGood: info.pktGood.toString(),
    pktBad: info.pktBad.toString(),
    pktKeyNotFound: info.pktKeyNotFound.toString(),
    pktAoRequired: info.pktAoRequired.toString(),
    pktDroppedIcmp: info.pktDroppedIcmp.toString(),
  };
}

export function applySocketSettings(
  socket: Socket,
  settings: RelaySettings,
  binding: Pick<TcpAoBinding, 'setKeepalive' | 'socketFd'>,
): void {
  socket.setNoDelay(true);
  const { keepalive } = settings;
  if (keepalive.enabled) {
    binding.setKeepalive(binding.socketFd(socket), {
      idleSecs: keepalive.idleSecs,
      intervalSecs: keepalive.intervalSecs,
      probes: keepalive.probes,
    });
  }
}

/**
 * Accepts plain or AO connections, asks the handler for the other leg, and
 * relays. Every accepted connection ends in exactly one log line: refused or
 * closed, with bytes each way, duration and reason.
 */
/** The address a connection comes from, IPv4 peers of a dual-stack listener written as IPv4. */
function peerAddressOf(client: Socket): string {
  return parseSocketAddress(client.remoteAddress)?.address ?? '?';
}

export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  const { log, handler, relay: settings, binding } = options;
  const sessions = new SessionTracker();
  const pending = new Set<Socket>();
  const refusals = new Map<string, number>(REFUSAL_REASONS.map((reason) => [reason, 0]));
  const perPeer = new Map<string, number>();
  let acceptErrors = 0;
  let accepting = true;

  const countRefusal = (reason: string) => refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
  // A closure over the address alone: a relayed connection keeps it, and must not keep its accept-time scope (the client socket).
  const releaser = (address: string) => () => release(address);
  const release = (address: string) => {
    const left = (perPeer.get(address) ?? 1) - 1;
    if (left <= 0) perPeer.delete(address);
    else perPeer.set(address, left);
  };

  const waterMark = options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark };
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true, ...waterMark }, (client) => {
    const id = sessions.nextId();
    const address = peerAddressOf(client);
    const peer = `${client.remoteAddress ?? '?'}:${client.remotePort ?? 0}`;
    const connLog = log.child({ conn: id, peer });
    client.on('error', () => undefined);
    if (!accepting) {
      countRefusal('shutting_down');
      connLog.info({ event: 'connection_refused', reason: 'shutting_down' }, 'connection refused: shutting down');
      client.resetAndDestroy();
      return;
    }
    if (sessions.size + pending.size >= settings.maxConnections) {
      countRefusal('max_connections');
      connLog.warn(
        { event: 'connection_refused', reason: 'max_connections', limit: settings.maxConnections },
        'connection refused: max_connections reached',
      );
      client.resetAndDestroy();
      return;
    }
    const fromPeer = perPeer.get(address) ?? 0;
    if (fromPeer >= settings.maxConnectionsPerPeer) {
      countRefusal('max_connections_per_peer');
      connLog.warn(
        { event: 'connection_refused', reason: 'max_connections_per_peer', limit: settings.maxConnectionsPerPeer, address },
        `connection refused: ${address} already has max_connections_per_peer (${settings.maxConnectionsPerPeer}) connections`,
      );
      client.resetAndDestroy();
      return;
    }
    perPeer.set(address, fromPeer + 1);
    pending.add(client);
    connLog.info({ event: 'connection_accepted' }, 'connection accepted');
    handler
      .open(client, id)
      .then((legs) => {
        pending.delete(client);
        try {
          if (client.destroyed) throw new ConnectionRefused('client_gone', 'client closed before the relay started');
          applySocketSettings(client, settings, binding);
          applySocketSettings(legs.upstream, settings, binding);
          relayConnection(id, peer, client, legs, connLog, releaser(address));
        } catch (error) {
          legs.upstream.resetAndDestroy();
          if (legs.wire !== client) legs.wire.resetAndDestroy();
          throw error;
        }
      })
      .catch((error: unknown) => {
        pending.delete(client);
        release(address);
        const refused =
          error instanceof ConnectionRefused ? error : new ConnectionRefused('internal_error', String(error));
        countRefusal(refused.reason);
        connLog.warn(
          { event: 'connection_refused', reason: refused.reason, ...refused.context },
          `connection refused: ${refused.message}`,
        );
        if (!client.destroyed) client.resetAndDestroy();
      });
  });

  // Accept errors libuv cannot absorb (EMFILE past its reserve fd, ENOBUFS) would otherwise throw and end the process.
  server.on('error', (error: NodeJS.ErrnoException) => {
    acceptErrors += 1;
    log.error(
      { event: 'accept_error', code: error.code, syscall: error.syscall, acceptErrors },
      `the listener could not accept a connection (${error.code ?? error.message}); still serving`,
    );
  });

  /**
   * Hands both legs to the addon's relay thread. A connection it cannot take
   * (a write still queued in Node, no fd left to duplicate) is refused, never
   * relayed some other way; the sockets are left open for the caller to reset.
   */
  const handOff = (client: Socket, legs: OpenedLegs, snapshot: (fd: number) => void): { relay: Relay; wireFd: number } => {
    if (!canHandOff(client, legs.upstream)) {
      throw new ConnectionRefused('relay_unavailable', 'a leg cannot be handed to the native relay (a write is still queued or the socket closed)');
    }
    let fd = -1;
    let relay: Relay;
    try {
      relay = startNativeRelay(client, legs.upstream, {
        idleTimeoutMs: settings.idleTimeoutMs,
        beforeClose: () => snapshot(fd),
        ...(options.nativeRelay === undefined ? {} : { engine: options.nativeRelay }),
      });
    } catch (error) {
      const cause = error as NodeJS.ErrnoException;
      throw new ConnectionRefused('relay_unavailable', `the native relay did not take the connection: ${cause.message}`, {
        ...(cause.code === undefined ? {} : { code: cause.code }),
      });
    }
    // A plain leg (-1) has no AO counters.
    fd = legs.wireFd < 0 ? -1 : legs.wire === client ? relay.legFds.client : relay.legFds.upstream;
    return { relay, wireFd: fd };
  };

  const relayConnection = (id: number, peer: string, client: Socket, legs: OpenedLegs, connLog: Logger, ended: () => void) => {
    let lastCounters: Record<string, string | number> | undefined;
    const snapshotCounters = (fd: number) => {
      if (fd < 0) return;
      try {
        lastCounters = countersOf(handler.readAoInfo(fd));
      } catch {
        // The fd is already being torn down; keep the previous snapshot.
      }
    };
    const { relay, wireFd } = handOff(client, legs, snapshotCounters);
    sessions.add({ id, peer, wireFd, relay });
    connLog.info({ event: 'relay_started', ...legs.context }, 'relay started');
    void relay.done.then((result) => {
      ended();
      connLog.info(
        {
          event: 'connection_closed',
          reason: result.reason,
          bytesClientToUpstream: result.bytesClientToUpstream,
          bytesUpstreamToClient: result.bytesUpstreamToClient,
          durationMs: result.durationMs,
          ao: lastCounters,
          ...(result.error ? { error: result.error.message } : {}),
        },
        `connection closed: ${result.reason}`,
      );
    });
  };

  return {
    server,
    sessions,
    pendingCount: () => pending.size,
    refusals: () => refusals,
    acceptErrors: () => acceptErrors,
    stopAccepting: () => {
      accepting = false;
      // close() stops listening at once; its callback would wait for every relay.
      if (server.listening) server.close();
    },
    abortPending: () => {
      for (const client of pending) client.resetAndDestroy();
    },
  };
}

export type { RelayEndReason };
