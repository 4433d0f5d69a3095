import type { Relay, RelayEndReason } from './relay.js';

/** A live relayed connection, as shown in logs and, later, in /status. */
export interface Session {
  readonly id: number;
  readonly peer: string;
  readonly wireFd: number;
  readonly relay: Relay;
}

/** The set of live sessions; the shutdown sequence and the connection cap read it. */
export class SessionTracker {
  readonly #live = new Map<number, Session>();
  #nextId = 1;

  get size(): number {
    return this.#live.size;
  }

  nextId(): number {
    return this.#nextId++;
  }

  add(session: Session): void {
    this.#live.set(session.id, session);
    void session.relay.done.then(() => this.#live.delete(session.id));
  }

  list(): readonly Session[] {
    return [...this.#live.values()];
  }

  abortAll(reason: RelayEndReason): void {
    for (const session of this.#live.values()) session.relay.abort(reason);
  }

  /** Resolves true when every session ended by itself before the deadline. */
  async drain(deadlineMs: number): Promise<boolean> {
    const pending = this.list().map((session) => session.relay.done);
    if (pending.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), deadlineMs);
    });
    const drained = await Promise.race([Promise.all(pending).then(() => true as const), expired]);
    clearTimeout(timer);
    return drained;
  }
}
