/**
 * The proxy as one unit: the listener (plain on the initiator, AO with every
 * policy's keys on the terminator), the live connection handler and the
 * bounded drain on shutdown. It serves a plan; src/run.ts decides when it
 * starts, reloads and stops.
 */
import type { Logger } from 'pino';

import { formatEndpoint, type Endpoint } from '../config/address.js';
import { TcpAoError } from '../errors.js';
import type { TcpAoBinding } from '../native/index.js';
import { describePolicies, type ProxyPlan } from '../policy/plan.js';
import { createLiveHandler, type Admission } from './live-handler.js';
import { createProxyServer, type ProxyServer } from './server.js';

export interface SidecarDeps {
  readonly binding: TcpAoBinding;
  readonly log: Logger;
  /** Checks each new wire socket against the live key generation (the rotation controller). */
  readonly admit?: Admission;
}

export interface RunningSidecar {
  readonly proxy: ProxyServer;
  /** The address the listener is bound to (useful when the config asked for port 0). */
  address(): Endpoint;
  /** The AO listener's fd (terminator only), for keys added or removed on reload. */
  readonly listenerFd: number | undefined;
  /** New connections use `plan` from now on (a reload; same mode and listener). */
  usePlan(plan: ProxyPlan): void;
  /**
   * Stops accepting, lets relays finish until the deadline, then resets what is
   * left. Resolves 'clean' when nothing had to be cut.
   */
  shutdown(deadlineMs: number): Promise<'clean' | 'forced'>;
}

function listenOn(
  proxy: ProxyServer,
  options: { host: string; port: number; backlog: number } | { fd: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(
        new TcpAoError('ERR_TCPAO_LISTEN', `cannot listen: ${error.message}`, {
          cause: error,
          ...(error.code === undefined ? {} : { sysCode: error.code }),
        }),
      );
    proxy.server.once('error', onError);
    proxy.server.listen(options, () => {
      proxy.server.off('error', onError);
      resolve();
    });
  });
}

/** How long reset relays get to report their end; a reset socket closes at once. */
const RESET_WAIT_MS = 500;

export async function startSidecar(plan: ProxyPlan, deps: SidecarDeps): Promise<RunningSidecar> {
  const { binding, log } = deps;
  const proxyLog = log.child({ module: plan.mode });
  const live = createLiveHandler(plan, binding, proxyLog, deps.admit);
  let proxy: ProxyServer;
  let listenerFd: number | undefined;
  if (plan.mode === 'initiator') {
    proxy = createProxyServer({
      relay: plan.relay,
      log: proxyLog,
      binding,
      handler: live.handler,
    });
    await listenOn(proxy, { host: plan.listenPlain.host, port: plan.listenPlain.port, backlog: plan.relay.listenBacklog });
    proxyLog.info(
      {
        event: 'listening',
        listenPlain: formatEndpoint(plan.listenPlain),
        remoteAo: formatEndpoint(plan.remoteAo),
        policies: describePolicies(plan.policies),
      },
      'initiator listening (plain, local side)',
    );
  } else {
    const keys = plan.policies.flatMap((policy) => policy.keys);
    const fd = binding.createAoListener({
      host: plan.listenAo.host,
      port: plan.listenAo.port,
      keys,
      backlog: plan.relay.listenBacklog,
    });
    proxy = createProxyServer({
      relay: plan.relay,
      log: proxyLog,
      binding,
      handler: live.handler,
    });
    try {
      await listenOn(proxy, { fd });
    } catch (error) {
      binding.closeFd(fd);
      throw error;
    }
    listenerFd = fd;
    const installed = binding.getKeys(fd);
    proxyLog.info(
      {
        event: 'listener_ao_installed',
        listenAo: formatEndpoint(plan.listenAo),
        forwardPlain: formatEndpoint(plan.forwardPlain),
        policies: describePolicies(plan.policies),
        keysOnListener: installed.map((key) => ({
          peer: `${key.peer}/${key.prefixLength}`,
          sendId: key.sendId,
          recvId: key.recvId,
          algorithm: key.kernelAlgorithm,
        })),
        aoRequired: binding.getAoInfo(fd).aoRequired,
      },
      'listener AO policies installed',
    );
  }

  const address = (): Endpoint => {
    const bound = proxy.server.address();
    if (bound === null || typeof bound === 'string') throw new Error('listener has no address');
    return { host: bound.address, port: bound.port, family: bound.family === 'IPv6' ? 6 : 4 };
  };

  let shuttingDown: Promise<'clean' | 'forced'> | undefined;
  const shutdown = (deadlineMs: number) => {
    shuttingDown ??= (async () => {
      proxy.stopAccepting();
      proxy.abortPending();
      const live = proxy.sessions.size;
      proxyLog.info({ event: 'shutdown_started', liveSessions: live, deadlineMs }, 'shutting down');
      const drained = await proxy.sessions.drain(deadlineMs);
      if (!drained) {
        proxyLog.warn(
          { event: 'shutdown_forced', liveSessions: proxy.sessions.size },
          'shutdown deadline reached; resetting the remaining connections',
        );
        proxy.sessions.abortAll('shutdown');
        await proxy.sessions.drain(RESET_WAIT_MS);
      }
      proxyLog.info({ event: 'shutdown_finished', clean: drained }, 'shutdown finished');
      return drained ? 'clean' : 'forced';
    })();
    return shuttingDown;
  };

  return { proxy, address, shutdown, listenerFd, usePlan: live.use };
}
