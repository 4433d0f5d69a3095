/**
 * The composition root: builds the proxy from the config's plan, starts the
 * runtime beside it (reloads, pid file, observability) and owns every signal.
 * SIGTERM and SIGINT abort one shutdown; SIGHUP asks the runtime for a reload.
 * Handlers are registered once here and removed when the run ends.
 */
import { once } from 'node:events';
import type { Logger } from 'pino';

import type { SidecarConfig } from './config/load.js';
import { TcpAoError } from './errors.js';
import { defaultBinding, type TcpAoBinding } from './native/index.js';
import { planFromConfig } from './policy/plan.js';
import type { Admission } from './proxy/live-handler.js';
import { startSidecar, type RunningSidecar } from './proxy/sidecar.js';
import { startRuntime, type Runtime } from './rotation/runtime.js';
import { holdHangups, releaseHangups } from './startup-hangups.js';

/**
 * The forced path (reset what is left, close the metrics listener, remove the
 * pid file, log shutdown_finished, exit) ends within this long after
 * shutdown_timeout_secs; a watchdog exits at that point whatever is still
 * running. The supervisor's grace and the container's stop timeout must be
 * longer (docs/configuration.md).
 */
export const SHUTDOWN_FORCED_BOUND_MS = 1_000;

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/** Starts the proxy and its runtime; a runtime that fails to start takes the proxy down with it. */
async function start(config: SidecarConfig, logger: Logger, binding: TcpAoBinding): Promise<{ sidecar: RunningSidecar; runtime: Runtime }> {
  // The controller exists once the runtime runs; until then every connection uses the first generation as is.
  let admit: Admission | undefined;
  const sidecar = await startSidecar(planFromConfig(config), {
    binding,
    log: logger,
    admit: (socket, kind) => admit?.(socket, kind),
  });
  let runtime: Runtime;
  try {
    runtime = await startRuntime({ config, sidecar, logger, binding });
  } catch (error) {
    await sidecar.shutdown(0);
    throw error;
  }
  admit = (socket, kind) => runtime.controller.admit(socket, kind);
  return { sidecar, runtime };
}

/**
 * Runs the sidecar until SIGTERM or SIGINT, then shuts down within
 * shutdown_timeout_secs. A second signal exits at once with status 1.
 * Resolves after a clean shutdown; rejects when relays had to be cut.
 */
export async function runSidecar(config: SidecarConfig, logger: Logger, binding: TcpAoBinding = defaultBinding()): Promise<void> {
  // Before the first await: a HUP from now on is held until the runtime can reload.
  holdHangups();
  const log = logger.child({ module: 'sidecar' });
  let started: { sidecar: RunningSidecar; runtime: Runtime };
  try {
    started = await start(config, logger, binding);
  } catch (error) {
    // Start-up failed: SIGHUP gets its default action back.
    releaseHangups();
    throw error;
  }
  const { sidecar, runtime } = started;
  const deadlineMs = config.global.shutdown_timeout_secs * 1_000;
  const stop = new AbortController();
  let watchdog: NodeJS.Timeout | undefined;

  const exitNow = (): never => {
    runtime.abandon();
    process.exit(1);
  };
  const onStopSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      log.warn({ event: 'shutdown_aborted', signal }, `second ${signal}: exiting now`);
      exitNow();
    }
    log.info({ event: 'signal', signal }, `${signal} received`);
    stop.abort(signal);
  };
  const onHangup = () => runtime.reload();
  for (const signal of STOP_SIGNALS) process.on(signal, onStopSignal);
  process.on('SIGHUP', onHangup);
  const early = releaseHangups();
  if (early > 0) {
    logger
      .child({ module: 'reload' })
      .info({ event: 'reload_held', signals: early }, 'SIGHUP arrived during start-up; reloading now that the sidecar runs');
    runtime.reload();
  }

  let outcome: 'clean' | 'forced';
  try {
    await once(stop.signal, 'abort');
    watchdog = setTimeout(() => {
      log.error(
        { event: 'shutdown_finished', clean: false, watchdog: true, boundMs: deadlineMs + SHUTDOWN_FORCED_BOUND_MS },
        'shutdown did not finish within shutdown_timeout_secs plus its forced-path bound; exiting now',
      );
      exitNow();
    }, deadlineMs + SHUTDOWN_FORCED_BOUND_MS);
    watchdog.unref();
    outcome = await sidecar.shutdown(deadlineMs);
    await runtime.close();
  } finally {
    clearTimeout(watchdog);
    for (const signal of STOP_SIGNALS) process.off(signal, onStopSignal);
    process.off('SIGHUP', onHangup);
  }
  if (outcome === 'forced') {
    throw new TcpAoError(
      'ERR_TCPAO_SHUTDOWN_TIMEOUT',
      `relays were still open after shutdown_timeout_secs (${config.global.shutdown_timeout_secs} s) and were reset`,
    );
  }
}
