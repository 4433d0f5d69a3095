/**
 * What to do to one socket so that it holds a generation's keys, worked out
 * from what the kernel reports (pure; apply-keys.ts does the calls).
 *
 * The kernel rules this follows (Documentation/networking/tcp_ao.rst):
 * - a listener has no current or RNext key; a key can be added to or removed
 *   from it at any time, but keys already copied to connections in the accept
 *   queue do not change, so accepted sockets are reconciled again;
 * - on a connection our current key follows the peer's RNextKeyID, and our
 *   RNext (the key we ask the peer to send with) changes only when we set it;
 * - the current and the RNext key cannot be deleted, nor the last key;
 * - a key cannot be changed in place: new bytes under the same ids need a
 *   delete and an add (EEXIST otherwise).
 * A key that is retired or deprecated goes once it is neither current nor
 * RNext and the peer has been seen signing with the key we asked for.
 */
import type { AoInfo, AoKeyInfo } from '../native/index.js';
import { installedIdentity, keyIdentity, type WireKey } from '../policy/keyset.js';

export type SocketKind = 'listener' | 'initiator' | 'terminator';

export type RemovalReason = 'retired' | 'deprecated';

export type KeyAction =
  | { readonly kind: 'add'; readonly key: WireKey; readonly replacing: boolean }
  | { readonly kind: 'delete'; readonly key: AoKeyInfo; readonly reason: RemovalReason | 'replaced' }
  | { readonly kind: 'set_info'; readonly currentKey?: number; readonly rnextKey?: number };

/** Why a key that should go is still on a socket. */
export type PendingReason = 'current_key' | 'rnext_key' | 'peer_not_moved' | 'kernel_refused';

export interface PendingRemoval {
  readonly sendId: number;
  readonly recvId: number;
  readonly removal: RemovalReason;
  readonly waitingFor: PendingReason;
}

export interface SocketPlan {
  readonly actions: readonly KeyAction[];
  readonly pending: readonly PendingRemoval[];
  /** Keys changed under the same ids that are current or RNext here: the reload has to be refused. */
  readonly inUseChanges: readonly AoKeyInfo[];
}

export interface SocketState {
  readonly installed: readonly AoKeyInfo[];
  /** Absent for a listener. */
  readonly info?: AoInfo;
}

/**
 * @param desired every key of the policies covering this socket's peer (on a listener: all policies), with roles
 * @param preferred the key to send with and ask for, when a policy covers the peer
 * @param changed identities whose bytes, algorithm, MAC length or options flag differ from what the sockets hold
 */
export function planSocket(
  kind: SocketKind,
  state: SocketState,
  desired: readonly WireKey[],
  preferred: WireKey | undefined,
  changed: ReadonlySet<string> = new Set(),
): SocketPlan {
  const actions: KeyAction[] = [];
  const pending: PendingRemoval[] = [];
  const inUseChanges: AoKeyInfo[] = [];
  const installed = new Map(state.installed.map((key) => [installedIdentity(key), key]));
  const wanted = new Map(desired.map((key) => [keyIdentity(key), key]));
  const info = kind === 'listener' ? undefined : state.info;

  // Adds come first so that no step leaves the socket without a usable key.
  for (const [identity, key] of wanted) {
    if (key.role === 'deprecated') continue;
    const present = installed.get(identity);
    if (present === undefined) {
      actions.push({ kind: 'add', key, replacing: false });
      continue;
    }
    if (!changed.has(identity)) continue;
    if (info !== undefined && (present.sendId === info.currentKey || present.recvId === info.rnextKey)) {
      inUseChanges.push(present);
      continue;
    }
    actions.push({ kind: 'delete', key: present, reason: 'replaced' });
    actions.push({ kind: 'add', key, replacing: true });
  }

  let currentAfter = info?.currentKey;
  let rnextAfter = info?.rnextKey;
  if (info !== undefined && preferred !== undefined && preferred.role !== 'deprecated') {
    // The initiator sends with its preferred key at once; both sides ask the peer for it (RNextKeyID).
    const moveCurrent = kind === 'initiator' && info.currentKey !== preferred.sendId;
    const moveRnext = info.rnextKey !== preferred.recvId;
    if (moveCurrent || moveRnext) {
      actions.push({
        kind: 'set_info',
        ...(moveCurrent ? { currentKey: preferred.sendId } : {}),
        ...(moveRnext ? { rnextKey: preferred.recvId } : {}),
      });
    }
    if (moveCurrent) currentAfter = preferred.sendId;
    rnextAfter = preferred.recvId;
  }

  // The peer has moved to the key we ask for once it has signed at least one segment with it.
  const rnextKey = state.installed.find((key) => key.recvId === rnextAfter);
  const peerMoved = rnextKey !== undefined && rnextKey.pktGood > 0n;
  for (const [identity, key] of installed) {
    const want = wanted.get(identity);
    if (want !== undefined && want.role !== 'deprecated') continue;
    const removal: RemovalReason = want === undefined ? 'retired' : 'deprecated';
    if (info === undefined) {
      actions.push({ kind: 'delete', key, reason: removal });
      continue;
    }
    const waitingFor: PendingReason | undefined =
      key.sendId === currentAfter ? 'current_key' : key.recvId === rnextAfter ? 'rnext_key' : peerMoved ? undefined : 'peer_not_moved';
    if (waitingFor === undefined) actions.push({ kind: 'delete', key, reason: removal });
    else pending.push({ sendId: key.sendId, recvId: key.recvId, removal, waitingFor });
  }
  return { actions, pending, inUseChanges };
}
