/**
 * What goes on sockets, mapped from the validated config: the policies with
 * their keys in the addon's shape, the listener and peer endpoints, and the
 * relay's settings. The proxy serves connections from a plan and never reads
 * the config itself.
 */
import type { Endpoint } from '../config/address.js';
import type { SidecarConfig } from '../config/load.js';
import type { AoKeySpec } from '../native/index.js';
import { keysForNewSockets, toKeySpec, wireKeysOf, type WireKey } from './keyset.js';

/** One AO policy with its keys resolved, ready for the addon. */
export interface WirePolicy {
  readonly name: string;
  readonly peer: string;
  readonly prefixLength: number;
  readonly keys: readonly AoKeySpec[];
}

export interface KeepaliveSettings {
  readonly enabled: boolean;
  readonly idleSecs: number;
  readonly intervalSecs: number;
  readonly probes: number;
}

export interface RelaySettings {
  readonly listenBacklog: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxConnections: number;
  /** Connections open at once from one client address (the local client's, or the AO peer's). */
  readonly maxConnectionsPerPeer: number;
  readonly keepalive: KeepaliveSettings;
}

export interface InitiatorPlan {
  readonly mode: 'initiator';
  readonly listenPlain: Endpoint;
  readonly remoteAo: Endpoint;
  /** Local address the AO wire connections are bound to; the kernel picks one when absent. */
  readonly sourceIp?: string;
  readonly policies: readonly WirePolicy[];
  readonly relay: RelaySettings;
}

export interface TerminatorPlan {
  readonly mode: 'terminator';
  readonly listenAo: Endpoint;
  readonly forwardPlain: Endpoint;
  readonly policies: readonly WirePolicy[];
  readonly relay: RelaySettings;
}

export type ProxyPlan = InitiatorPlan | TerminatorPlan;

/** Loggable view of policies: names, peers, ids and algorithms, never key bytes. */
export function describePolicies(policies: readonly WirePolicy[]): object[] {
  return policies.map((policy) => ({
    policy: policy.name,
    peer: `${policy.peer}/${policy.prefixLength}`,
    keys: policy.keys.map((key) => ({ sendId: key.sendId, recvId: key.recvId, algorithm: key.algorithm })),
  }));
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
