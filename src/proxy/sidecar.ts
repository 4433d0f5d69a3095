import type { Logger } from 'pino';
import type { SidecarConfig } from '../config/load';
import { keysForNewSockets, toKeySpec, wireKeysOf, type WireKey } from '../rotation/keyset';
import { createLiveHandler, type Admission } from '../rotation/live-handler';
import { startRuntime, type Runtime } from '../rotation/runtime';
import { holdHangups, releaseHangups } from '../rotation/startup-hangups';
import { TcpAoError } from '../errors';
import { defaultBinding, type TcpAoBinding } from '../native';
import { describePolicies, formatEndpoint, type Endpoint, type ProxyPlan, type RelaySettings, type WirePolicy } from './plan';
import { createProxyServer, type ProxyServer } from './server';

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

/**
 * The forced path (reset what is left, close the metrics listener, remove the
 * pid file, log shutdown_finished, exit) ends within this long after
 * shutdown_timeout_secs; a watchdog exits at that point whatever is still
 * running. The supervisor's grace and the container's stop timeout must be
 * longer (docs/configuration.md).
 */
export const SHUTDOWN_FORCED_BOUND_MS = 1_000;

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
    return { host: bound.address, port: bound.port };
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

  return { proxy, address, shutdown, listenerFd, usePlan: (next) => live.use(next) };
}

/** The [global] settings the relay reads. */
type RelayGlobals = Pick<
  SidecarConfig['global'],
  | 'listen_backlog'
  | 'idle_timeout_secs'
  | 'connect_timeout_secs'
  | 'max_connections'
  | 'max_connections_per_peer'
  | 'tcp_keepalive'
  | 'keepalive_time_secs'
  | 'keepalive_intvl_secs'
  | 'keepalive_probes'
>;

/** The relay's settings from [global] (also used by the benchmark harness with the defaults). */
export function relaySettingsFrom(global: RelayGlobals): RelaySettings {
  return {
    listenBacklog: global.listen_backlog,
    idleTimeoutMs: global.idle_timeout_secs * 1_000,
    connectTimeoutMs: global.connect_timeout_secs * 1_000,
    maxConnections: global.max_connections,
    maxConnectionsPerPeer: global.max_connections_per_peer,
    keepalive: {
      enabled: global.tcp_keepalive,
      idleSecs: global.keepalive_time_secs,
      intervalSecs: global.keepalive_intvl_secs,
      probes: global.keepalive_probes,
    },
  };
}

/** Maps the validated config onto what the proxy needs; keys are their SecretKeys, never copies of the bytes. */
export function planFromConfig(config: SidecarConfig): ProxyPlan {
  const relay = relaySettingsFrom(config.global);
  // New sockets get every key but the deprecated ones. On the initiator the first applicable policy's
  // preferred key is the one to send with (current) and to ask for (RNext).
  const policies = config.activePolicies.map((policy, index): WirePolicy => {
    const flagged = (key: WireKey) =>
      config.mode === 'initiator' && index === 0 && key.role === 'preferred' ? { setCurrent: true, setRnext: true } : {};
    const keys = keysForNewSockets(wireKeysOf(policy));
    return {
      name: policy.name,
      peer: policy.peer_ip.address,
      prefixLength: policy.peer_ip.prefixLength,
      keys: keys.map((key) => toKeySpec(key, flagged(key))),
    };
  });
  if (config.mode === 'initiator') {
    const sourceIp = config.initiator.source_ip?.address;
    return {
      mode: 'initiator',
      listenPlain: config.initiator.listen_plain,
      remoteAo: config.initiator.remote_ao,
      ...(sourceIp === undefined ? {} : { sourceIp }),
      policies,
      relay,
    };
  }
  return { mode: 'terminator', listenAo: config.terminator.listen_ao, forwardPlain: config.terminator.forward_plain, policies, relay };
}

/**
 * Runs the sidecar until SIGTERM or SIGINT, then shuts down within
 * shutdown_timeout_secs. A second signal exits at once with status 1.
 * Resolves after a clean shutdown; rejects when relays had to be cut.
 */
export async function runSidecar(config: SidecarConfig, logger: Logger, binding: TcpAoBinding = defaultBinding()): Promise<void> {
  // Before the first await: a HUP from now on is held until the runtime handles it as a reload.
  holdHangups();
  const log = logger.child({ module: 'sidecar' });
  // The controller exists once the sidecar runs; until then every connection uses the first generation as is.
  let admit: Admission | undefined;
  let sidecar: RunningSidecar;
  let runtime: Runtime;
  try {
    sidecar = await startSidecar(planFromConfig(config), {
      binding,
      log: logger,
      admit: (socket, kind) => admit?.(socket, kind),
    });
    runtime = await startRuntime({ config, sidecar, logger, binding, planFromConfig });
  } catch (error) {
    // Start-up failed: SIGHUP gets its default action back.
    releaseHangups();
    throw error;
  }
  admit = (socket, kind) => runtime.controller.admit(socket, kind);
  const deadlineMs = config.global.shutdown_timeout_secs * 1_000;
  let watchdog: NodeJS.Timeout | undefined;
  const outcome = await new Promise<'clean' | 'forced'>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        log.warn({ event: 'shutdown_aborted', signal }, `second ${signal}: exiting now`);
        runtime.abandon();
        process.exit(1);
      }
      signalled = true;
      log.info({ event: 'signal', signal }, `${signal} received`);
      watchdog = setTimeout(() => {
        log.error(
          { event: 'shutdown_finished', clean: false, watchdog: true, boundMs: deadlineMs + SHUTDOWN_FORCED_BOUND_MS },
          'shutdown did not finish within shutdown_timeout_secs plus its forced-path bound; exiting now',
        );
        runtime.abandon();
        process.exit(1);
      }, deadlineMs + SHUTDOWN_FORCED_BOUND_MS);
      watchdog.unref();
      void sidecar.shutdown(deadlineMs).then(resolve);
    };
    let signalled = false;
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await runtime.close();
  clearTimeout(watchdog);
  if (outcome === 'forced') {
    throw new TcpAoError(
      'ERR_TCPAO_SHUTDOWN_TIMEOUT',
      `relays were still open after shutdown_timeout_secs (${config.global.shutdown_timeout_secs} s) and were reset`,
    );
  }
}
