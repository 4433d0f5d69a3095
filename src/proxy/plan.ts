import type { AoKeySpec } from '../native';

/** A host and port, as parsed from "host:port" or "[v6]:port". */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

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

export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/** Loggable view of policies: names, peers, ids and algorithms, never key bytes. */
export function describePolicies(policies: readonly WirePolicy[]): object[] {
  return policies.map((policy) => ({
    policy: policy.name,
    peer: `${policy.peer}/${policy.prefixLength}`,
    keys: policy.keys.map((key) => ({ sendId: key.sendId, recvId: key.recvId, algorithm: key.algorithm })),
  }));
}
