/**
 * Carries out socket plans (reconcile.ts works them out): one key change at a
 * time on one socket, or a whole reload across the listener and every
 * connection with the steps already taken undone when one fails.
 */
import type { AoInfo, AoKeyInfo, TcpAoBinding } from '../native/index.js';
import { describeKey, installedIdentity, toKeySpec, type WireKey } from '../policy/keyset.js';
import type { KeyAction, PendingRemoval, RemovalReason, SocketPlan } from './reconcile.js';
import { errorCodeOf } from '../errors.js';

export interface ActionFailure {
  readonly action: string;
  readonly code: string;
  readonly message: string;
}

export interface RemovedKey {
  readonly sendId: number;
  readonly recvId: number;
  readonly reason: RemovalReason | 'replaced';
}

export interface ApplyResult {
  readonly added: number;
  readonly removed: number;
  /** The keys actually deleted, in order. */
  readonly removedKeys: readonly RemovedKey[];
  readonly infoSet: boolean;
  readonly failures: readonly ActionFailure[];
}

export function describeAction(action: KeyAction): string {
  if (action.kind === 'add') return `${action.replacing ? 'replace' : 'add'} key ${describeKey(action.key)}`;
  if (action.kind === 'delete') return `delete key ${describeKey(action.key)} (${action.reason})`;
  const parts = [
    action.currentKey === undefined ? undefined : `current key ${action.currentKey}`,
    action.rnextKey === undefined ? undefined : `RNext key ${action.rnextKey}`,
  ].filter((part) => part !== undefined);
  return `set ${parts.join(' and ')}`;
}

function sysCodeOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { sysCode?: unknown }).sysCode : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Runs one action on a socket; throws what the addon throws. */
export function runAction(binding: TcpAoBinding, fd: number, action: KeyAction): void {
  if (action.kind === 'add') {
    binding.addKey(fd, toKeySpec(action.key));
  } else if (action.kind === 'delete') {
    binding.deleteKey(fd, {
      peer: action.key.peer,
      prefixLength: action.key.prefixLength,
      sendId: action.key.sendId,
      recvId: action.key.recvId,
      ifindex: action.key.ifindex,
    });
  } else {
    binding.setAoInfo(fd, {
      ...(action.currentKey === undefined ? {} : { currentKey: action.currentKey }),
      ...(action.rnextKey === undefined ? {} : { rnextKey: action.rnextKey }),
    });
  }
}

/** Runs a plan's actions in order; a failed action is recorded and the rest still run. */
export function applySocketPlan(binding: TcpAoBinding, fd: number, plan: SocketPlan): ApplyResult {
  let added = 0;
  const removedKeys: RemovedKey[] = [];
  let infoSet = false;
  const failures: ActionFailure[] = [];
  for (const action of plan.actions) {
    try {
      runAction(binding, fd, action);
      if (action.kind === 'add') added += 1;
      else if (action.kind === 'delete') removedKeys.push({ sendId: action.key.sendId, recvId: action.key.recvId, reason: action.reason });
      else infoSet = true;
    } catch (error) {
      failures.push({
        action: describeAction(action),
        code: errorCodeOf(error) ?? 'ERR_TCPAO_INTERNAL',
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return { added, removed: removedKeys.length, removedKeys, infoSet, failures };
}

/** One socket a reload changes, with the AO state its plan was made from. */
export interface ReloadTarget {
  readonly id: number | 'listener';
  readonly fd: number;
  readonly plan: SocketPlan;
  /** Absent for a listener. */
  readonly info?: AoInfo;
}

export interface ReloadStepFailure extends ActionFailure {
  readonly socket: number | 'listener';
  readonly sysCode?: string;
}

export interface ReloadApplyResult {
  /** True when every step that decides the reload worked; false when it was undone. */
  readonly ok: boolean;
  readonly added: number;
  readonly removedKeys: readonly (RemovedKey & { readonly socket: number | 'listener' })[];
  /** The step that made the reload fail (ok false). */
  readonly failure?: ReloadStepFailure;
  /** Undo steps that failed too: those sockets now hold neither generation's keys exactly. */
  readonly rollbackFailures: readonly ReloadStepFailure[];
  /** Deletes on connections that the kernel refused after the reload took effect; they are retried. */
  readonly deferredDeletes: readonly { readonly socket: number; readonly removal: PendingRemoval }[];
}

/**
 * Applies a reload to every socket as one change, so that no failure leaves a
 * socket without the keys it had: first every add and replacement on every
 * socket, then the current/RNext moves, then the deletes on the listener.
 * The first failure in these stops the reload and undoes, newest first, every
 * step already taken (a deleted key is added back from `previousKey`).
 * Deletes on connections run last; one the kernel refuses (the peer moved its
 * RNext between our read and the delete) stays pending and is retried.
 */
export function applyReload(
  binding: TcpAoBinding,
  targets: readonly ReloadTarget[],
  previousKey: (identity: string) => WireKey | undefined,
): ReloadApplyResult {
  const undo: { socket: number | 'listener'; fd: number; action: KeyAction }[] = [];
  const removedKeys: (RemovedKey & { socket: number | 'listener' })[] = [];
  let added = 0;
  const failureOf = (socket: number | 'listener', action: KeyAction, error: unknown): ReloadStepFailure => {
    const sysCode = sysCodeOf(error);
    return {
      socket,
      action: describeAction(action),
      code: errorCodeOf(error) ?? 'ERR_TCPAO_INTERNAL',
      message: error instanceof Error ? error.message : String(error),
      ...(sysCode === undefined ? {} : { sysCode }),
    };
  };
  const undoOf = (target: ReloadTarget, action: KeyAction): KeyAction | undefined => {
    if (action.kind === 'add') {
      const { key } = action;
      const installed: AoKeyInfo = {
        peer: key.peer,
        prefixLength: key.prefixLength,
        sendId: key.sendId,
        recvId: key.recvId,
        kernelAlgorithm: key.algorithm,
        maclen: key.maclen,
        keyflags: 0,
        keylen: key.secret.byteLength,
        ifindex: key.ifindex,
        isCurrent: false,
        isRnext: false,
        pktGood: 0n,
        pktBad: 0n,
      };
      return { kind: 'delete', key: installed, reason: 'replaced' };
    }
    if (action.kind === 'delete') {
      const previous = previousKey(installedIdentity(action.key));
      return previous === undefined ? undefined : { kind: 'add', key: previous, replacing: true };
    }
    const info = target.info;
    if (info === undefined) return undefined;
    return {
      kind: 'set_info',
      ...(action.currentKey === undefined ? {} : { currentKey: info.currentKey }),
      ...(action.rnextKey === undefined ? {} : { rnextKey: info.rnextKey }),
    };
  };
  const rollBack = (): ReloadStepFailure[] => {
    const failures: ReloadStepFailure[] = [];
    for (const step of undo.reverse()) {
      try {
        runAction(binding, step.fd, step.action);
      } catch (error) {
        failures.push(failureOf(step.socket, step.action, error));
      }
    }
    return failures;
  };
  const decisive: ((action: KeyAction, target: ReloadTarget) => boolean)[] = [
    (action) => action.kind === 'add' || (action.kind === 'delete' && action.reason === 'replaced'),
    (action) => action.kind === 'set_info',
    (action, target) => action.kind === 'delete' && action.reason !== 'replaced' && target.id === 'listener',
  ];
  for (const inPhase of decisive) {
    for (const target of targets) {
      for (const action of target.plan.actions) {
        if (!inPhase(action, target)) continue;
        const reverse = undoOf(target, action);
        if (reverse === undefined) {
          // Nothing to restore it from: a change that could not be undone is not made.
          const failure: ReloadStepFailure = {
            socket: target.id,
            action: describeAction(action),
            code: 'ERR_TCPAO_RELOAD_KEY_INSTALL',
            message: 'the key is not in the running generation, so this step could not be undone if a later one failed',
          };
          return { ok: false, added: 0, removedKeys: [], failure, rollbackFailures: rollBack(), deferredDeletes: [] };
        }
        try {
          runAction(binding, target.fd, action);
        } catch (error) {
          const failure = failureOf(target.id, action, error);
          return { ok: false, added: 0, removedKeys: [], failure, rollbackFailures: rollBack(), deferredDeletes: [] };
        }
        undo.push({ socket: target.id, fd: target.fd, action: reverse });
        if (action.kind === 'add') added += 1;
        if (action.kind === 'delete') removedKeys.push({ socket: target.id, sendId: action.key.sendId, recvId: action.key.recvId, reason: action.reason });
      }
    }
  }
  const deferredDeletes: { socket: number; removal: PendingRemoval }[] = [];
  for (const target of targets) {
    if (target.id === 'listener') continue;
    for (const action of target.plan.actions) {
      if (action.kind !== 'delete' || action.reason === 'replaced') continue;
      try {
        runAction(binding, target.fd, action);
        removedKeys.push({ socket: target.id, sendId: action.key.sendId, recvId: action.key.recvId, reason: action.reason });
      } catch {
        deferredDeletes.push({
          socket: target.id,
          removal: { sendId: action.key.sendId, recvId: action.key.recvId, removal: action.reason, waitingFor: 'kernel_refused' },
        });
      }
    }
  }
  return { ok: true, added, removedKeys, rollbackFailures: [], deferredDeletes };
}

