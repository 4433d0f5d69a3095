/**
 * What the policies mean on each side. The kernel matches master keys by peer
 * address (and VRF), never by port, so peer_port is our own rule:
 *
 * - initiator: a policy applies when its peer_ip contains remote_ao's address
 *   and its peer_port is 0 or equals remote_ao's port. The applicable policies
 *   are installed on every outbound socket before connect(); none applicable
 *   is a config error, since the initiator never dials without TCP-AO.
 * - terminator: every policy is installed on the listener before listen();
 *   peer_port names the AO wire port, so it must be 0 or listen_ao's port.
 */
import { formatPrefix, prefixContains, prefixesOverlap, type Endpoint } from '../config/address.js';
import type { AoPolicy } from '../config/schema.js';
import type { SecretKey } from '../config/keys.js';

export interface PolicySelection<P extends AoPolicy> {
  /** Policies to install, in file order. */
  readonly selected: readonly P[];
  /** Policies that do not apply to this side's peer. */
  readonly unused: readonly P[];
}

export function policyAppliesToRemote(policy: AoPolicy, remote: Endpoint): boolean {
  return (
    prefixContains(policy.peer_ip, remote.host, remote.family) && (policy.peer_port === 0 || policy.peer_port === remote.port)
  );
}

export function selectInitiatorPolicies<P extends AoPolicy>(policies: readonly P[], remote: Endpoint): PolicySelection<P> {
  return {
    selected: policies.filter((policy) => policyAppliesToRemote(policy, remote)),
    unused: policies.filter((policy) => !policyAppliesToRemote(policy, remote)),
  };
}

/** Why a policy does not apply to `remote`, for messages. */
export function describeMismatch(policy: AoPolicy, remote: Endpoint): string {
  if (!prefixContains(policy.peer_ip, remote.host, remote.family)) {
    return `peer_ip ${formatPrefix(policy.peer_ip)} does not contain ${remote.host}`;
  }
  return `peer_port ${policy.peer_port} differs from remote_ao's port ${remote.port}`;
}

/**
 * Two policies whose master keys the kernel refuses to hold together (EEXIST):
 * overlapping peers in the same VRF scope sharing a send_id or a recv_id
 * (RFC 5925 section 3.1, net/ipv4/tcp_ao.c tcp_ao_add_cmd). A key with no VRF
 * matches every VRF, so it clashes with keys of any VRF.
 */
export function idClash(a: AoPolicy, b: AoPolicy): { readonly sendId: boolean; readonly recvId: boolean } | undefined {
  if (!prefixesOverlap(a.peer_ip, b.peer_ip)) return undefined;
  if (a.vrf_ifindex !== 0 && b.vrf_ifindex !== 0 && a.vrf_ifindex !== b.vrf_ifindex) return undefined;
  const sendId = a.send_id === b.send_id;
  const recvId = a.recv_id === b.recv_id;
  return sendId || recvId ? { sendId, recvId } : undefined;
}

/** A loggable description of a policy: ids, algorithm, key length, never key bytes. */
export function describePolicy(policy: AoPolicy & { readonly key?: SecretKey }): Record<string, unknown> {
  return {
    name: policy.name,
    peer: formatPrefix(policy.peer_ip),
    peer_port: policy.peer_port,
    send_id: policy.send_id,
    recv_id: policy.recv_id,
    mac_alg: policy.mac_alg,
    maclen: policy.maclen,
    ...(policy.exclude_tcp_options ? { exclude_tcp_options: true } : {}),
    // Keys that set their own maclen or options flag (Junos-style per-key tcp-ao-option).
    ...keyOverrides(policy),
    ...(policy.vrf_ifindex !== 0 ? { vrf_ifindex: policy.vrf_ifindex } : {}),
    ...(policy.key === undefined ? {} : { key_length: policy.key.byteLength }),
  };
}

function keyOverrides(policy: AoPolicy): Record<string, unknown> {
  const own = policy.keys.filter((key) => key.maclen !== policy.maclen || key.exclude_tcp_options !== policy.exclude_tcp_options);
  if (own.length === 0) return {};
  return {
    key_options: own.map((key) => ({
      send_id: key.send_id,
      recv_id: key.recv_id,
      maclen: key.maclen,
      exclude_tcp_options: key.exclude_tcp_options,
    })),
  };
}
