/**
 * A snapshot of the running sidecar for /status and /metrics: listeners,
 * connections with their AO state read from the sockets at that moment,
 * totals, and the config generation with the last reload. Key ids, counters
 * and lengths only: no key bytes exist in any of these objects.
 */
import { KNOWN_KEYS } from '../config/schema.js';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import type { AoInfo, AoKeyInfo, TcpAoBinding } from '../native/index.js';
import type { ReloadRecord } from '../rotation/controller.js';
import type { ReloadProblem } from '../rotation/reload-rules.js';
import type { PendingRemoval } from '../rotation/reconcile.js';

export interface AoCounters {
  readonly pktGood: number;
  readonly pktBad: number;
  readonly pktKeyNotFound: number;
  readonly pktAoRequired: number;
  readonly pktDroppedIcmp: number;
}

export interface KeyStatus {
  readonly peer: string;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: string;
  readonly maclen: number;
  readonly isCurrent: boolean;
  readonly isRnext: boolean;
  readonly pktGood: number;
  readonly pktBad: number;
}

export interface ConnectionStatus {
  readonly id: number;
  /** The plain client (initiator) or the AO peer (terminator), as address:port. */
  readonly peer: string;
  /** The AO peer's address. */
  readonly wirePeer: string;
  readonly startedAt: string;
  readonly ageSecs: number;
  readonly bytesClientToUpstream: number;
  readonly bytesUpstreamToClient: number;
  readonly currentKey: number | null;
  readonly rnextKey: number | null;
  readonly aoRequired: boolean | null;
  readonly ao: AoCounters | null;
  readonly keys: readonly KeyStatus[];
  readonly pendingRemovals: readonly PendingRemoval[];
}

export interface ListenerStatus {
  readonly kind: 'plain' | 'ao';
  readonly address: string;
  readonly aoRequired: boolean | null;
  readonly ao: AoCounters | null;
  readonly keys: readonly KeyStatus[];
}

export interface SidecarStatus {
  readonly mode: 'initiator' | 'terminator';
  readonly pid: number;
  readonly startedAt: string;
  readonly uptimeSecs: number;
  readonly config: {
    readonly source: string;
    readonly generation: number;
    readonly lastReload: ReloadRecord | null;
    readonly reloadsApplied: number;
    readonly reloadsFailed: number;
  };
  readonly listeners: readonly ListenerStatus[];
  readonly connections: readonly ConnectionStatus[];
  readonly totals: {
    readonly connectionsOpen: number;
    readonly connectionsPending: number;
    readonly bytesClientToUpstream: number;
    readonly bytesUpstreamToClient: number;
    readonly pendingKeyRemovals: number;
    /** Connections refused before a byte was relayed, by reason (every known reason, 0 included). */
    readonly connectionsRefused: Readonly<Record<string, number>>;
    readonly acceptErrors: number;
  };
}

/** What the snapshot reads; runtime.ts builds it from the running sidecar. */
export interface StatusSource {
  readonly mode: 'initiator' | 'terminator';
  readonly startedAt: number;
  readonly configSource: () => string;
  readonly generation: () => number;
  readonly lastReload: () => ReloadRecord | undefined;
  readonly reloadCounts: () => { readonly applied: number; readonly failed: number };
  readonly listeners: () => readonly { readonly kind: 'plain' | 'ao'; readonly address: string; readonly fd: number | undefined }[];
  readonly connections: () => readonly {
    readonly id: number;
    readonly peer: string;
    readonly wirePeer: string;
    readonly fd: number;
    readonly startedAt: number;
    readonly bytes: () => { readonly clientToUpstream: number; readonly upstreamToClient: number };
  }[];
  readonly pendingConnections: () => number;
  readonly refusals: () => ReadonlyMap<string, number>;
  readonly acceptErrors: () => number;
  readonly pendingRemovals: () => ReadonlyMap<number, readonly PendingRemoval[]>;
}

/** Socket names and the controller's own paths; FILE:LINE:COLUMN of a syntax error. */
const FIXED_PATH = /^(?:\([a-z ]{1,32}\)|the listener|connection \d{1,12}|\/[\w./-]{0,512}:\d{1,9}:\d{1,9})$/;
const SCHEMA_NAMES: ReadonlySet<string> = new Set(Object.values(KNOWN_KEYS).flat());

/** A path that names only schema fields (with [n] indices), or a fixed form: never text from the file. */
function isSafePath(path: string): boolean {
  if (FIXED_PATH.test(path)) return true;
  return path.split('.').every((segment) => {
    const match = /^([a-z_]{1,64})((?:\[\d{1,6}\])*)$/.exec(segment);
    return match !== null && SCHEMA_NAMES.has(match[1] as string);
  });
}

function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ErrorCodes, code);
}

/**
 * A reload problem as the pages show it: the code, the registry's text for it
 * and the path, never the message, which quotes what the config or a key
 * source held. The full message is in the reload_failed log line.
 */
function publicProblem(problem: ReloadProblem): ReloadProblem {
  const code = isErrorCode(problem.code) ? problem.code : 'ERR_TCPAO_INTERNAL';
  return {
    code,
    path: isSafePath(problem.path) ? problem.path : '(config)',
    message: ErrorCodes[code],
    ...(problem.sysCode !== undefined && /^E[A-Z0-9]{1,15}$/.test(problem.sysCode) ? { sysCode: problem.sysCode } : {}),
  };
}

function publicReload(record: ReloadRecord | undefined): ReloadRecord | null {
  if (record === undefined) return null;
  return { ...record, problems: record.problems.map(publicProblem), restartNeeded: record.restartNeeded.filter((name) => isSafePath(name)) };
}

function counters(info: AoInfo): AoCounters {
  return {
    pktGood: Number(info.pktGood),
    pktBad: Number(info.pktBad),
    pktKeyNotFound: Number(info.pktKeyNotFound),
    pktAoRequired: Number(info.pktAoRequired),
    pktDroppedIcmp: Number(info.pktDroppedIcmp),
  };
}

function keyStatus(key: AoKeyInfo): KeyStatus {
  return {
    peer: `${key.peer}/${key.prefixLength}`,
    sendId: key.sendId,
    recvId: key.recvId,
    algorithm: key.kernelAlgorithm,
    maclen: key.maclen,
    isCurrent: key.isCurrent,
    isRnext: key.isRnext,
    pktGood: Number(key.pktGood),
    pktBad: Number(key.pktBad),
  };
}

/** The socket's AO state, or nulls when the fd is already closing. */
function readSocket(binding: TcpAoBinding, fd: number): { info: AoInfo | undefined; keys: AoKeyInfo[] } {
  try {
    return { info: binding.getAoInfo(fd), keys: binding.getKeys(fd) };
  } catch {
    return { info: undefined, keys: [] };
  }
}

export function snapshot(source: StatusSource, binding: TcpAoBinding, now: number = Date.now()): SidecarStatus {
  const pending = source.pendingRemovals();
  const listeners = source.listeners().map((listener): ListenerStatus => {
    if (listener.fd === undefined) return { kind: listener.kind, address: listener.address, aoRequired: null, ao: null, keys: [] };
    const { info, keys } = readSocket(binding, listener.fd);
    return {
      kind: listener.kind,
      address: listener.address,
      aoRequired: info?.aoRequired ?? null,
      ao: info === undefined ? null : counters(info),
      keys: keys.map(keyStatus),
    };
  });
  const connections = source.connections().map((connection): ConnectionStatus => {
    const { info, keys } = readSocket(binding, connection.fd);
    const bytes = connection.bytes();
    return {
      id: connection.id,
      peer: connection.peer,
      wirePeer: connection.wirePeer,
      startedAt: new Date(connection.startedAt).toISOString(),
      ageSecs: Math.max(0, (now - connection.startedAt) / 1_000),
      bytesClientToUpstream: bytes.clientToUpstream,
      bytesUpstreamToClient: bytes.upstreamToClient,
      currentKey: info?.currentKey ?? null,
      rnextKey: info?.rnextKey ?? null,
      aoRequired: info?.aoRequired ?? null,
      ao: info === undefined ? null : counters(info),
      keys: keys.map(keyStatus),
      pendingRemovals: pending.get(connection.id) ?? [],
    };
  });
  const counts = source.reloadCounts();
  return {
    mode: source.mode,
    pid: process.pid,
    startedAt: new Date(source.startedAt).toISOString(),
    uptimeSecs: Math.max(0, (now - source.startedAt) / 1_000),
    config: {
      source: source.configSource(),
      generation: source.generation(),
      lastReload: publicReload(source.lastReload()),
      reloadsApplied: counts.applied,
      reloadsFailed: counts.failed,
    },
    listeners,
    connections,
    totals: {
      connectionsOpen: connections.length,
      connectionsPending: source.pendingConnections(),
      bytesClientToUpstream: connections.reduce((sum, connection) => sum + connection.bytesClientToUpstream, 0),
      bytesUpstreamToClient: connections.reduce((sum, connection) => sum + connection.bytesUpstreamToClient, 0),
      pendingKeyRemovals: [...pending.values()].reduce((sum, list) => sum + list.length, 0),
      connectionsRefused: Object.fromEntries(source.refusals()),
      acceptErrors: source.acceptErrors(),
    },
  };
}
