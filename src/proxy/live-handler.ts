/**
 * The connection handler the proxy server holds for its whole life. It serves
 * each new connection with the plan of the latest config generation, and lets
 * the rotation controller check every new wire socket against that
 * generation: on the terminator before the app is dialled, on the initiator
 * right after the AO connect.
 */
import { isIPv6, type Socket } from 'node:net';
import type { Logger } from 'pino';

import { parseSocketAddress, type IpFamily } from '../config/address.js';
import type { TcpAoBinding } from '../native/index.js';
import type { ProxyPlan } from '../policy/plan.js';
import { createInitiatorHandler } from './initiator.js';
import type { ConnectionHandler, OpenedLegs } from './server.js';
import { createTerminatorHandler } from './terminator.js';

/** A relaying connection's wire socket, as key rotation sees it. */
export interface WireSocket {
  readonly id: number;
  readonly fd: number;
  /** The AO peer's address (the terminator for an initiator, the initiator for a terminator). */
  readonly peerAddress: string;
  readonly family: IpFamily;
}

/** Checks (and updates) a new wire socket; throws ConnectionRefused to refuse it. */
export type Admission = (socket: WireSocket, kind: 'initiator' | 'terminator') => void;

export interface LiveHandler {
  readonly handler: ConnectionHandler;
  /** Serves connections accepted from now on with `plan` (same mode). */
  use(plan: ProxyPlan): void;
  plan(): ProxyPlan;
}

export function createLiveHandler(initial: ProxyPlan, binding: TcpAoBinding, log: Logger, admit?: Admission): LiveHandler {
  const handlerFor = (plan: ProxyPlan): ConnectionHandler =>
    plan.mode === 'initiator' ? createInitiatorHandler(plan, binding, log) : createTerminatorHandler(plan, binding, log);
  let plan = initial;
  let current = handlerFor(initial);

  const handler: ConnectionHandler = {
    readAoInfo: (fd) => current.readAoInfo(fd),
    async open(client: Socket, id: number): Promise<OpenedLegs> {
      const active = current;
      const activePlan = plan;
      if (activePlan.mode === 'terminator' && admit !== undefined) {
        const peer = parseSocketAddress(client.remoteAddress);
        let fd: number | undefined;
        try {
          fd = binding.socketFd(client);
        } catch {
          fd = undefined;
        }
        // Without an fd or a peer the terminator handler refuses the connection with its own reason.
        if (fd !== undefined && peer !== undefined) admit({ id, fd, peerAddress: peer.address, family: peer.family }, 'terminator');
      }
      const legs = await active.open(client, id);
      if (activePlan.mode === 'initiator' && admit !== undefined) {
        const host = activePlan.remoteAo.host;
        try {
          admit({ id, fd: legs.wireFd, peerAddress: host, family: isIPv6(host) ? 6 : 4 }, 'initiator');
        } catch (error) {
          legs.wire.resetAndDestroy();
          throw error;
        }
      }
      return legs;
    },
  };

  return {
    handler,
    use(next: ProxyPlan): void {
      if (next.mode !== plan.mode) throw new Error(`cannot switch a ${plan.mode} to ${next.mode}`);
      plan = next;
      current = handlerFor(next);
    },
    plan: () => plan,
  };
}
