// size: one class whose methods share the live generation, the pending removals and the retry timer
/**
 * Reload and key rotation for a running sidecar. A reload re-reads the config
 * and its key sources, validates everything, and only then applies the
 * difference to the listener, to every established wire socket and to the
 * connections made from then on. Keys on their way out are removed once the
 * peer has moved off them, on a timer and at each reload. Nothing here closes
 * a connection that is relaying; the one refusal is a connection accepted with
 * a key that a reload had already retired.
 */
import type { Logger } from 'pino';

import { loadConfigFileAsync, type LoadedConfig, type SidecarConfig } from '../config/load.js';
import type { AoInfo, TcpAoBinding } from '../native/index.js';
import type { WireSocket } from '../proxy/live-handler.js';
import { ConnectionRefused } from '../proxy/server.js';
import {
  allKeys,
  changedIdentities,
  describeKey,
  generationFromConfig,
  keyIdentity,
  keysForPeer,
  type KeyGeneration,
} from '../policy/keyset.js';
import { applyReload, applySocketPlan, type ApplyResult, type ReloadApplyResult, type ReloadTarget, type RemovedKey } from './apply-keys.js';
import { planSocket, type PendingRemoval, type SocketKind, type SocketPlan } from './reconcile.js';
import { immutableChanges, problemsOf, restartOnlyChanges, type ReloadProblem } from './reload-rules.js';

/** What the controller needs from the running proxy. */
export interface RotationTarget {
  readonly mode: 'initiator' | 'terminator';
  /** The AO listener's fd (terminator only). */
  readonly listenerFd: number | undefined;
  wireSockets(): readonly WireSocket[];
  /** Serve connections made from now on with this plan. */
  usePlan(config: SidecarConfig): void;
}

export interface ReloadRecord {
  readonly at: string;
  readonly result: 'applied' | 'failed';
  readonly generation: number;
  readonly problems: readonly ReloadProblem[];
  readonly keysAdded: number;
  readonly keysRemoved: number;
  readonly pendingRemovals: number;
  readonly restartNeeded: readonly string[];
}

export interface RotationOptions {
  readonly config: SidecarConfig;
  readonly binding: TcpAoBinding;
  readonly log: Logger;
  readonly target: RotationTarget;
  /** How often keys waiting for the peer are tried again. */
  readonly retryMs?: number;
  /** Environment for env: key sources (the process's own by default). */
  readonly env?: NodeJS.ProcessEnv;
  /** Loads the config on reload (the file at config.source by default). */
  readonly load?: (source: string, mode: SidecarConfig['mode'], env: NodeJS.ProcessEnv) => LoadedConfig | Promise<LoadedConfig>;
}

const DEFAULT_RETRY_MS = 1_000;

/** Zeroes the key bytes of a config that a reload replaced. */
function wipeKeys(config: SidecarConfig): void {
  for (const policy of config.ao_policy) for (const key of policy.keys) key.secret.wipe();
}

export interface PendingEntry extends PendingRemoval {
  readonly socket: number | 'listener';
}

export class RotationController {
  readonly #binding: TcpAoBinding;
  readonly #log: Logger;
  readonly #target: RotationTarget;
  readonly #retryMs: number;
  readonly #env: NodeJS.ProcessEnv;
  readonly #load: NonNullable<RotationOptions['load']>;
  #config: SidecarConfig;
  #generation: KeyGeneration;
  #lastReload: ReloadRecord | undefined;
  #pending = new Map<number, readonly PendingRemoval[]>();
  /** Pending entries already logged, so a key that waits is reported once. */
  #reported = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #reloads: Promise<unknown> = Promise.resolve();

  constructor(options: RotationOptions) {
    this.#binding = options.binding;
    this.#log = options.log;
    this.#target = options.target;
    this.#retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    this.#env = options.env ?? process.env;
    this.#load = options.load ?? ((source, mode, env) => loadConfigFileAsync(source, { mode, env }));
    this.#config = options.config;
    this.#generation = generationFromConfig(options.config, 1);
  }

  get generation(): number {
    return this.#generation.number;
  }

  get config(): SidecarConfig {
    return this.#config;
  }

  get lastReload(): ReloadRecord | undefined {
    return this.#lastReload;
  }

  /** Keys waiting to be removed, per wire socket id. */
  pendingRemovals(): ReadonlyMap<number, readonly PendingRemoval[]> {
    return this.#pending;
  }

  /**
   * Re-reads the config file and its key sources without blocking the event
   * loop (the data path keeps running meanwhile); applies them only when
   * everything is valid. Reloads run one at a time, in the order asked for.
   */
  reload(): Promise<ReloadRecord> {
    const run = this.#reloads.then(() => this.#reloadNow());
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  async #reloadNow(): Promise<ReloadRecord> {
    let loaded: LoadedConfig;
    try {
      loaded = await this.#load(this.#config.source, this.#config.mode, this.#env);
    } catch (error) {
      return this.#failed(problemsOf(error));
    }
    try {
      return this.apply(loaded.config);
    } catch (error) {
      // Planning reads every socket before changing any; a failure there leaves them as they were.
      // The new keys were never taken up, so nothing may keep their bytes.
      if (this.#config !== loaded.config) wipeKeys(loaded.config);
      return this.#failed(problemsOf(error));
    }
  }

  /**
   * Validates `next` against the running state, then applies it to every
   * socket as one change (add before delete); on any problem, a kernel refusal
   * included, nothing changes or what changed is undone, and the reload is
   * recorded as failed.
   */
  apply(next: SidecarConfig): ReloadRecord {
    const refused = immutableChanges(this.#config, next);
    if (refused.length > 0) {
      wipeKeys(next);
      return this.#failed(refused);
    }
    const generation = generationFromConfig(next, this.#generation.number + 1);
    const changed = changedIdentities(this.#generation, generation);

    // Plan every socket before touching any, so that a refusal leaves all of them as they were.
    const plans: ReloadTarget[] = [];
    const inUse: ReloadProblem[] = [];
    if (this.#target.listenerFd !== undefined) {
      const fd = this.#target.listenerFd;
      const plan = planSocket('listener', { installed: this.#binding.getKeys(fd) }, allKeys(generation), undefined, changed);
      plans.push({ fd, id: 'listener', plan });
    }
    for (const socket of this.#target.wireSockets()) {
      const planned = this.#planFor(socket, generation, changed);
      if (planned === undefined) continue;
      const { plan, info } = planned;
      for (const key of plan.inUseChanges) {
        inUse.push({
          code: 'ERR_TCPAO_RELOAD_KEY_IN_USE',
          path: `connection ${socket.id}`,
          message:
            `the key ${describeKey(key)} changed (bytes, algorithm, maclen or exclude_tcp_options) but is the current or RNext key of this ` +
            'connection, and the kernel cannot change a key in place: give the new key new send_id/recv_id and rotate ' +
            'to it (docs/key-rotation.md); nothing was applied',
        });
      }
      plans.push({ fd: socket.fd, id: socket.id, plan, info });
    }
    if (inUse.length > 0) {
      wipeKeys(next);
      return this.#failed(inUse);
    }

    // The listener first: new connections must find the new keys before the peer starts using them.
    const running = new Map(allKeys(this.#generation).map((key) => [keyIdentity(key), key]));
    const result = applyReload(this.#binding, plans, (identity) => running.get(identity));
    if (!result.ok) {
      wipeKeys(next);
      return this.#failed(this.#installProblems(result));
    }
    for (const key of result.removedKeys) this.#logRemoved(key.socket, key);
    for (const entry of plans) {
      if (entry.id === 'listener') continue;
      const deferred = result.deferredDeletes.filter((item) => item.socket === entry.id).map((item) => item.removal);
      this.#notePending(entry.id, [...entry.plan.pending, ...deferred]);
    }
    const added = result.added;
    const removed = result.removedKeys.length;
    const previous = this.#config;
    this.#config = next;
    this.#generation = generation;
    this.#target.usePlan(next);
    wipeKeys(previous);

    const restartNeeded = restartOnlyChanges(previous, next);
    const pendingCount = [...this.#pending.values()].reduce((sum, list) => sum + list.length, 0);
    const record: ReloadRecord = {
      at: new Date().toISOString(),
      result: 'applied',
      generation: generation.number,
      problems: [],
      keysAdded: added,
      keysRemoved: removed,
      pendingRemovals: pendingCount,
      restartNeeded,
    };
    this.#lastReload = record;
    this.#log.info(
      {
        event: 'reload_applied',
        generation: generation.number,
        keysAdded: added,
        keysRemoved: removed,
        pendingRemovals: pendingCount,
        connections: plans.filter((entry) => entry.id !== 'listener').length,
        keys: generation.policies.map((policy) => ({
          policy: policy.name,
          keyIds: policy.keys.map((key) => ({ sendId: key.sendId, recvId: key.recvId, role: key.role, algorithm: key.algorithm })),
        })),
      },
      `reload applied: config generation ${generation.number}`,
    );
    if (restartNeeded.length > 0) {
      this.#log.warn(
        { event: 'reload_restart_needed', settings: restartNeeded },
        `${restartNeeded.join(', ')} changed; these take effect at the next restart`,
      );
    }
    this.#schedule();
    return record;
  }

  /**
   * Brings a new wire socket (accepted or just connected) to the current
   * generation: keys added to the listener after the SYN arrived, or a reload
   * during connect(), are not on it yet. A terminator refuses a connection
   * whose handshake used a key the current generation no longer has.
   */
  admit(socket: WireSocket, kind: Exclude<SocketKind, 'listener'>): void {
    const { keys, preferred } = keysForPeer(this.#generation, socket.peerAddress, socket.family);
    let installed;
    let info;
    try {
      installed = this.#binding.getKeys(socket.fd);
      info = this.#binding.getAoInfo(socket.fd);
    } catch {
      // Not an AO socket: the connection handler refuses it with its own reason.
      return;
    }
    if (kind === 'terminator') {
      // On an accepted socket the RNext key is the one the peer signed the handshake with.
      const handshake = installed.find((key) => key.recvId === info.rnextKey);
      const known = handshake !== undefined && keys.some((key) => key.sendId === handshake.sendId && key.recvId === handshake.recvId);
      if (!known) {
        throw new ConnectionRefused(
          'retired_key',
          `the peer authenticated with key recv_id ${info.rnextKey}, which config generation ${this.#generation.number} no longer has`,
          { generation: this.#generation.number },
        );
      }
    }
    const plan = planSocket(kind, { installed, info }, keys, preferred);
    const result = this.#run(socket.id, socket.fd, plan);
    if (result.added + result.removed > 0 || result.infoSet) {
      this.#log.info(
        { event: 'connection_keys_updated', conn: socket.id, generation: this.#generation.number, added: result.added, removed: result.removed },
        'new connection brought to the current key generation',
      );
    }
    this.#notePending(socket.id, [...plan.pending, ...refusedDeletes(plan, result)]);
    this.#schedule();
  }

  /** Tries the waiting removals again (the timer calls this). */
  retryPending(): void {
    const live = new Map(this.#target.wireSockets().map((socket) => [socket.id, socket]));
    for (const id of [...this.#pending.keys()]) {
      const socket = live.get(id);
      if (socket === undefined) {
        this.#pending.delete(id);
        continue;
      }
      const planned = this.#planFor(socket, this.#generation, new Set());
      if (planned === undefined) {
        this.#pending.delete(id);
        continue;
      }
      const result = this.#run(id, socket.fd, planned.plan);
      this.#notePending(id, [...planned.plan.pending, ...refusedDeletes(planned.plan, result)]);
    }
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #planFor(socket: WireSocket, generation: KeyGeneration, changed: ReadonlySet<string>): { plan: SocketPlan; info: AoInfo } | undefined {
    const { keys, preferred } = keysForPeer(generation, socket.peerAddress, socket.family);
    try {
      const installed = this.#binding.getKeys(socket.fd);
      const info = this.#binding.getAoInfo(socket.fd);
      return { plan: planSocket(this.#target.mode, { installed, info }, keys, preferred, changed), info };
    } catch {
      // The connection is closing and its fd is going away.
      return undefined;
    }
  }

  #logRemoved(id: number | 'listener', key: RemovedKey): void {
    if (key.reason === 'replaced') return;
    this.#log.info(
      { event: 'key_removed', socket: id, sendId: key.sendId, recvId: key.recvId, removal: key.reason },
      `key send_id ${key.sendId}/recv_id ${key.recvId} removed from ${socketName(id)}`,
    );
  }

  /** The problems of a reload that was undone, logged step by step and returned for the record. */
  #installProblems(result: ReloadApplyResult): ReloadProblem[] {
    const problems: ReloadProblem[] = [];
    const { failure } = result;
    if (failure !== undefined) {
      this.#log.warn(
        { event: 'key_apply_failed', socket: failure.socket, action: failure.action, code: failure.code, sysCode: failure.sysCode },
        `could not ${failure.action} on ${socketName(failure.socket)}: ${failure.message}`,
      );
      problems.push({
        code: 'ERR_TCPAO_RELOAD_KEY_INSTALL',
        path: socketName(failure.socket),
        message:
          `could not ${failure.action} (${failure.sysCode ?? failure.code}): ${failure.message}; ` +
          'every change this reload had made was undone and the running keys stay in force',
        ...(failure.sysCode === undefined ? {} : { sysCode: failure.sysCode }),
      });
    }
    for (const undone of result.rollbackFailures) {
      this.#log.error(
        { event: 'key_rollback_failed', socket: undone.socket, action: undone.action, code: undone.code, sysCode: undone.sysCode },
        `could not undo the reload on ${socketName(undone.socket)} (${undone.action}): ${undone.message}`,
      );
      problems.push({
        code: 'ERR_TCPAO_RELOAD_ROLLBACK',
        path: socketName(undone.socket),
        message: `could not ${undone.action} while undoing the reload (${undone.sysCode ?? undone.code}); restart the sidecar to reinstall its keys`,
        ...(undone.sysCode === undefined ? {} : { sysCode: undone.sysCode }),
      });
    }
    return problems;
  }

  /** Applies a plan to one socket and logs every key removed and every step that failed. */
  #run(id: number | 'listener', fd: number, plan: SocketPlan): ApplyResult {
    const where = socketName(id);
    const result = applySocketPlan(this.#binding, fd, plan);
    for (const key of result.removedKeys) this.#logRemoved(id, key);
    for (const failure of result.failures) {
      this.#log.warn(
        { event: 'key_apply_failed', socket: id, action: failure.action, code: failure.code },
        `could not ${failure.action} on ${where}: ${failure.message}`,
      );
    }
    return result;
  }

  #notePending(id: number, pending: readonly PendingRemoval[]): void {
    const previous = this.#pending.get(id) ?? [];
    for (const gone of previous) {
      if (!pending.some((entry) => entry.sendId === gone.sendId && entry.recvId === gone.recvId)) {
        this.#reported.delete(`${id}/${gone.sendId}/${gone.recvId}/${gone.waitingFor}`);
      }
    }
    for (const entry of pending) {
      const tag = `${id}/${entry.sendId}/${entry.recvId}/${entry.waitingFor}`;
      if (this.#reported.has(tag)) continue;
      this.#reported.add(tag);
      this.#log.info(
        { event: 'key_removal_pending', conn: id, sendId: entry.sendId, recvId: entry.recvId, removal: entry.removal, waitingFor: entry.waitingFor },
        `key send_id ${entry.sendId}/recv_id ${entry.recvId} stays on connection ${id} until ${WAIT_TEXT[entry.waitingFor]}`,
      );
    }
    if (pending.length === 0) this.#pending.delete(id);
    else this.#pending.set(id, pending);
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined || this.#pending.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.retryPending();
    }, this.#retryMs);
    this.#timer.unref();
  }

  #failed(problems: readonly ReloadProblem[]): ReloadRecord {
    const record: ReloadRecord = {
      at: new Date().toISOString(),
      result: 'failed',
      generation: this.#generation.number,
      problems,
      keysAdded: 0,
      keysRemoved: 0,
      pendingRemovals: [...this.#pending.values()].reduce((sum, list) => sum + list.length, 0),
      restartNeeded: [],
    };
    this.#lastReload = record;
    this.#log.error(
      { event: 'reload_failed', generation: this.#generation.number, problems },
      `reload refused, still running config generation ${this.#generation.number}: ` +
        problems.map((problem) => `${problem.code} ${problem.path}: ${problem.message}`).join('; '),
    );
    return record;
  }
}

function socketName(id: number | 'listener'): string {
  return id === 'listener' ? 'the listener' : `connection ${id}`;
}

/** The deletes of a plan that the kernel refused: they stay pending and are tried again. */
function refusedDeletes(plan: SocketPlan, result: ApplyResult): PendingRemoval[] {
  const removed = new Set(result.removedKeys.map((key) => `${key.sendId}/${key.recvId}`));
  return plan.actions.flatMap((action) =>
    action.kind === 'delete' && action.reason !== 'replaced' && !removed.has(`${action.key.sendId}/${action.key.recvId}`)
      ? [{ sendId: action.key.sendId, recvId: action.key.recvId, removal: action.reason, waitingFor: 'kernel_refused' as const }]
      : [],
  );
}

const WAIT_TEXT: Readonly<Record<PendingRemoval['waitingFor'], string>> = {
  current_key: 'the peer stops asking for it (it is our current key: the peer\'s RNextKeyID)',
  rnext_key: 'it is no longer the key we ask the peer for (RNext)',
  peer_not_moved: 'the peer has signed a segment with the key we ask for',
  kernel_refused: 'the kernel accepts the delete (it refused it; tried again every second)',
};
