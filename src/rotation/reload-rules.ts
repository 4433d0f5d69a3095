/**
 * What a reload may change: settings bound to the listener or to established
 * sessions are refused, settings read once at start are reported as needing
 * a restart, and a failed load becomes the problems the reload reports.
 */
import { formatEndpoint, type Endpoint } from '../config/address.js';
import { ConfigError, type ConfigProblem, type SidecarConfig } from '../config/load.js';
import { errorCodeOf } from '../errors.js';

export interface ReloadProblem {
  readonly code: string;
  readonly path: string;
  readonly message: string;
  /** The system error behind a failed key change (EINVAL, ENODEV, ...). */
  readonly sysCode?: string;
}

/** Global settings read once at start; a reload reports changes to them instead of applying them. */
const RESTART_ONLY_GLOBALS = [
  'log_format',
  'log_level',
  'idle_timeout_secs',
  'tcp_keepalive',
  'keepalive_time_secs',
  'keepalive_intvl_secs',
  'keepalive_probes',
  'connect_timeout_secs',
  'max_connections',
  'max_connections_per_peer',
  'shutdown_timeout_secs',
  'listen_backlog',
  'metrics_listen',
  'metrics_allow_remote',
  'pid_file',
] as const;

function endpointText(endpoint: Endpoint | undefined): string {
  return endpoint === undefined ? '(none)' : formatEndpoint(endpoint);
}

/** Settings bound to the listener or to established sessions: a reload that changes them is refused. */
export function immutableChanges(before: SidecarConfig, after: SidecarConfig): ReloadProblem[] {
  const problems: ReloadProblem[] = [];
  const refuse = (path: string, was: string, now: string, why: string) =>
    problems.push({
      code: 'ERR_TCPAO_RELOAD_RESTART_NEEDED',
      path,
      message: `changed from ${was} to ${now}; ${why}: restart the sidecar to change it (nothing was applied)`,
    });
  if (before.mode !== after.mode) {
    refuse('(top level)', `[${before.mode}]`, `[${after.mode}]`, 'the mode cannot change on reload');
    return problems;
  }
  if (before.mode === 'initiator' && after.mode === 'initiator') {
    const was = before.initiator;
    const now = after.initiator;
    if (endpointText(was.listen_plain) !== endpointText(now.listen_plain)) {
      refuse('initiator.listen_plain', endpointText(was.listen_plain), endpointText(now.listen_plain), 'the listener stays open across a reload');
    }
    if (endpointText(was.remote_ao) !== endpointText(now.remote_ao)) {
      refuse('initiator.remote_ao', endpointText(was.remote_ao), endpointText(now.remote_ao), 'established sessions are bound to it');
    }
    if ((was.source_ip?.address ?? '(none)') !== (now.source_ip?.address ?? '(none)')) {
      refuse('initiator.source_ip', was.source_ip?.address ?? '(none)', now.source_ip?.address ?? '(none)', 'established sessions are bound to it');
    }
  }
  if (before.mode === 'terminator' && after.mode === 'terminator') {
    const was = before.terminator.listen_ao;
    const now = after.terminator.listen_ao;
    if (endpointText(was) !== endpointText(now)) {
      refuse('terminator.listen_ao', endpointText(was), endpointText(now), 'the AO listener stays open across a reload');
    }
  }
  return problems;
}

export function restartOnlyChanges(before: SidecarConfig, after: SidecarConfig): string[] {
  const text = (value: unknown) => (typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value));
  return RESTART_ONLY_GLOBALS.filter((name) => text(before.global[name]) !== text(after.global[name])).map((name) => `global.${name}`);
}

export function problemsOf(error: unknown): ReloadProblem[] {
  if (error instanceof ConfigError) return error.problems.map((problem: ConfigProblem) => ({ ...problem }));
  return [
    {
      code: errorCodeOf(error) ?? 'ERR_TCPAO_INTERNAL',
      path: '(reload)',
      message: error instanceof Error ? error.message : String(error),
    },
  ];
}
