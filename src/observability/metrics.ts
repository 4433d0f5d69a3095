/**
 * /metrics in the Prometheus text exposition format (version 0.0.4), made
 * from a status snapshot: every AO counter is the value the kernel reported
 * for that socket when the page was requested.
 */
import type { SidecarStatus } from './status.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type MetricType = 'counter' | 'gauge';

interface Sample {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: Sample[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export function renderFamilies(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels).map(([name, value]) => `${name}="${escapeLabel(String(value))}"`);
      lines.push(`${family.name}${labels.length === 0 ? '' : `{${labels.join(',')}}`} ${formatValue(sample.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const AO_RESULTS = [
  ['good', 'pktGood'],
  ['bad', 'pktBad'],
  ['key_not_found', 'pktKeyNotFound'],
  ['ao_required', 'pktAoRequired'],
  ['dropped_icmp', 'pktDroppedIcmp'],
] as const;

export function renderMetrics(status: SidecarStatus): string {
  const family = (name: string, type: MetricType, help: string): Family => ({ name: `tcpao_proxy_${name}`, type, help, samples: [] });
  const info = family('info', 'gauge', 'Always 1; the labels say which side this sidecar is.');
  info.samples.push({ labels: { mode: status.mode }, value: 1 });
  const generation = family('config_generation', 'gauge', 'Config generation in use: 1 at start, +1 for every applied reload.');
  generation.samples.push({ labels: {}, value: status.config.generation });
  const reloads = family('reloads_total', 'counter', 'Reloads since start, by result.');
  reloads.samples.push({ labels: { result: 'applied' }, value: status.config.reloadsApplied });
  reloads.samples.push({ labels: { result: 'failed' }, value: status.config.reloadsFailed });
  const lastReloadTime = family('last_reload_timestamp_seconds', 'gauge', 'Unix time of the last reload (0 when none).');
  const lastReloadOk = family('last_reload_success', 'gauge', '1 when the last reload was applied, 0 when it was refused (1 when none).');
  const last = status.config.lastReload;
  lastReloadTime.samples.push({ labels: {}, value: last === null ? 0 : Date.parse(last.at) / 1_000 });
  lastReloadOk.samples.push({ labels: {}, value: last === null || last.result === 'applied' ? 1 : 0 });
  const uptime = family('uptime_seconds', 'gauge', 'Seconds since the sidecar started.');
  uptime.samples.push({ labels: {}, value: status.uptimeSecs });

  const open = family('connections_open', 'gauge', 'Connections relaying now.');
  open.samples.push({ labels: {}, value: status.totals.connectionsOpen });
  const pendingConnections = family('connections_pending', 'gauge', 'Connections accepted and still being set up.');
  pendingConnections.samples.push({ labels: {}, value: status.totals.connectionsPending });
  const refused = family('connections_refused_total', 'counter', 'Connections refused before any byte was relayed, by reason.');
  for (const [reason, count] of Object.entries(status.totals.connectionsRefused)) refused.samples.push({ labels: { reason }, value: count });
  const acceptErrors = family('accept_errors_total', 'counter', 'Accept errors the listener reported (EMFILE, ENFILE, ENOBUFS, ...).');
  acceptErrors.samples.push({ labels: {}, value: status.totals.acceptErrors });
  const pendingRemovals = family('key_removals_pending', 'gauge', 'Keys waiting for the peer to move off them before removal.');
  pendingRemovals.samples.push({ labels: {}, value: status.totals.pendingKeyRemovals });

  const bytes = family('connection_bytes_total', 'counter', 'Bytes relayed by an open connection, by direction.');
  const age = family('connection_age_seconds', 'gauge', 'Seconds since an open connection started relaying.');
  const current = family('current_key_id', 'gauge', 'send_id of the key a socket sends with (TCP_AO_INFO current_key).');
  const rnext = family('rnext_key_id', 'gauge', 'recv_id of the key a socket asks the peer to send with (TCP_AO_INFO rnext).');
  const aoPackets = family('ao_packets_total', 'counter', 'Per-socket TCP-AO segment counters from TCP_AO_INFO, by result.');
  const keyPackets = family('key_packets_total', 'counter', 'Per-key TCP-AO segment counters from TCP_AO_GET_KEYS, by result.');
  const keysInstalled = family('keys_installed', 'gauge', 'Keys on a socket (TCP_AO_GET_KEYS).');

  const socketMetrics = (
    socket: string,
    state: { ao: SidecarStatus['listeners'][number]['ao']; keys: SidecarStatus['listeners'][number]['keys'] },
  ) => {
    keysInstalled.samples.push({ labels: { socket }, value: state.keys.length });
    if (state.ao !== null) {
      for (const [result, field] of AO_RESULTS) aoPackets.samples.push({ labels: { socket, result }, value: state.ao[field] });
    }
    for (const key of state.keys) {
      const labels = { socket, send_id: key.sendId, recv_id: key.recvId };
      keyPackets.samples.push({ labels: { ...labels, result: 'good' }, value: key.pktGood });
      keyPackets.samples.push({ labels: { ...labels, result: 'bad' }, value: key.pktBad });
    }
  };
  for (const listener of status.listeners) {
    if (listener.kind === 'ao') socketMetrics(`listener ${listener.address}`, listener);
  }
  for (const connection of status.connections) {
    const socket = `conn ${connection.id}`;
    bytes.samples.push({ labels: { conn: connection.id, direction: 'client_to_upstream' }, value: connection.bytesClientToUpstream });
    bytes.samples.push({ labels: { conn: connection.id, direction: 'upstream_to_client' }, value: connection.bytesUpstreamToClient });
    age.samples.push({ labels: { conn: connection.id }, value: connection.ageSecs });
    if (connection.currentKey !== null) current.samples.push({ labels: { socket }, value: connection.currentKey });
    if (connection.rnextKey !== null) rnext.samples.push({ labels: { socket }, value: connection.rnextKey });
    socketMetrics(socket, connection);
  }
  return renderFamilies([
    info,
    generation,
    reloads,
    lastReloadTime,
    lastReloadOk,
    uptime,
    open,
    pendingConnections,
    refused,
    acceptErrors,
    pendingRemovals,
    bytes,
    age,
    current,
    rnext,
    aoPackets,
    keyPackets,
    keysInstalled,
  ]);
}
