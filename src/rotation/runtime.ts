/**
 * What runs beside the proxy: the reload controller, the pid file that
 * `tcpao-proxy reload` reads, and the optional /metrics and /status listener.
 * Signals are src/run.ts's: it calls reload() on SIGHUP.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';

import { formatEndpoint, parseSocketAddress } from '../config/address.js';
import type { SidecarConfig } from '../config/load.js';
import { errorCodeOf, TcpAoError } from '../errors.js';
import type { TcpAoBinding } from '../native/index.js';
import { startObservability, type ObservabilityServer } from '../observability/http.js';
import { snapshot, type SidecarStatus, type StatusSource } from '../observability/status.js';
import { planFromConfig } from '../policy/plan.js';
import type { WireSocket } from '../proxy/live-handler.js';
import type { RunningSidecar } from '../proxy/sidecar.js';
import { RotationController } from './controller.js';

export interface RuntimeOptions {
  readonly config: SidecarConfig;
  readonly sidecar: RunningSidecar;
  readonly logger: Logger;
  readonly binding: TcpAoBinding;
  readonly retryMs?: number;
}

export interface Runtime {
  readonly controller: RotationController;
  readonly observability: ObservabilityServer | undefined;
  status(): SidecarStatus;
  /** Runs a reload (what SIGHUP asks for). */
  reload(): void;
  close(): Promise<void>;
  /** What close() does, at once and without waiting: for an exit that cannot wait (second signal, watchdog). */
  abandon(): void;
}

/** "addr:port" as the proxy logs a peer, split at the last colon (IPv6 addresses have colons too). */
function addressOf(peer: string): string {
  const colon = peer.lastIndexOf(':');
  return colon < 0 ? peer : peer.slice(0, colon);
}

function resolvePidFile(config: SidecarConfig): string | undefined {
  const file = config.global.pid_file;
  return file === undefined ? undefined : resolve(dirname(config.source), file);
}

function writePidFile(path: string): void {
  try {
    writeFileSync(path, `${process.pid}\n`, { mode: 0o644 });
  } catch (error) {
    throw new TcpAoError(
      'ERR_TCPAO_PID_FILE',
      `cannot write pid_file ${path}: ${errorCodeOf(error) ?? 'error'}; give a writable path or leave pid_file out`,
      { cause: error },
    );
  }
}

function removePidFile(path: string): void {
  try {
    // Only our own: a newer instance may have taken the file over.
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
  } catch {
    // Already gone.
  }
}

export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, sidecar, logger, binding } = options;
  const log = logger.child({ module: 'reload' });
  const startedAt = Date.now();
  const mode = config.mode;

  const wireSockets = (): WireSocket[] =>
    sidecar.proxy.sessions.list().flatMap((session) => {
      const current = controller.config;
      const peer =
        current.mode === 'initiator'
          ? { address: current.initiator.remote_ao.host, family: current.initiator.remote_ao.family }
          : parseSocketAddress(addressOf(session.peer));
      return peer === undefined ? [] : [{ id: session.id, fd: session.wireFd, peerAddress: peer.address, family: peer.family }];
    });

  const controller: RotationController = new RotationController({
    config,
    binding,
    log,
    target: {
      mode,
      listenerFd: sidecar.listenerFd,
      wireSockets,
      usePlan: (next) => sidecar.usePlan(planFromConfig(next)),
    },
    ...(options.retryMs === undefined ? {} : { retryMs: options.retryMs }),
  });

  let applied = 0;
  let failed = 0;
  const reload = () => {
    log.info({ event: 'reload_requested', generation: controller.generation }, 'reload requested');
    void controller.reload().then((record) => {
      if (record.result === 'applied') applied += 1;
      else failed += 1;
    });
  };
  const source: StatusSource = {
    mode,
    startedAt,
    configSource: () => controller.config.source,
    generation: () => controller.generation,
    lastReload: () => controller.lastReload,
    reloadCounts: () => ({ applied, failed }),
    listeners: () => {
      const address = formatEndpoint(sidecar.address());
      return [{ kind: mode === 'terminator' ? 'ao' : 'plain', address, fd: sidecar.listenerFd }];
    },
    connections: () => {
      const peers = new Map(wireSockets().map((socket) => [socket.id, socket.peerAddress]));
      return sidecar.proxy.sessions.list().map((session) => ({
        id: session.id,
        peer: session.peer,
        wirePeer: peers.get(session.id) ?? addressOf(session.peer),
        fd: session.wireFd,
        startedAt: session.relay.startedAt,
        bytes: () => session.relay.bytes(),
      }));
    },
    pendingConnections: () => sidecar.proxy.pendingCount(),
    refusals: () => sidecar.proxy.refusals(),
    acceptErrors: () => sidecar.proxy.acceptErrors(),
    pendingRemovals: () => controller.pendingRemovals(),
  };
  const status = () => snapshot(source, binding);

  const pidFile = resolvePidFile(config);
  let observability: ObservabilityServer | undefined;
  try {
    if (pidFile !== undefined) writePidFile(pidFile);
    const listen = config.global.metrics_listen;
    if (listen !== undefined) observability = await startObservability(listen, status, logger.child({ module: 'metrics' }));
  } catch (error) {
    controller.close();
    if (pidFile !== undefined) removePidFile(pidFile);
    throw error;
  }

  return {
    controller,
    observability,
    status,
    reload,
    async close() {
      controller.close();
      await observability?.close();
      if (pidFile !== undefined) removePidFile(pidFile);
    },
    abandon() {
      controller.close();
      observability?.server.closeAllConnections();
      if (pidFile !== undefined) removePidFile(pidFile);
    },
  };
}
