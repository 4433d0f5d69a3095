/**
 * Checks of the peer addresses: not a loopback mismatch that can never
 * connect, and no NAT between the peers, which breaks every AO segment.
 */
import { BlockList } from 'node:net';

import {
  formatEndpoint,
  formatPrefix,
  isLoopback,
  isUnspecified,
  parsePeerPrefix,
  prefixContains,
  type Endpoint,
  type IpFamily,
  type PeerPrefix,
} from '../config/address.js';
import { selectInitiatorPolicies } from '../policy/select.js';
import type { AoPolicy, ParsedConfig } from '../config/schema.js';
import type { CheckResult, DoctorDeps } from './types.js';

interface NatRange {
  readonly prefix: PeerPrefix;
  readonly label: string;
  /** True when an address in the range is always reached through a NAT (a virtual service address). */
  readonly alwaysNat: boolean;
}

function natRange(text: string, label: string, alwaysNat: boolean): NatRange {
  const parsed = parsePeerPrefix(text);
  if (!parsed.ok) throw new TypeError(`bad built-in prefix ${text}`);
  return { prefix: parsed.value, label, alwaysNat };
}

/** Address ranges where a NAT between the peers is likely; the label says why. */
export const NAT_RANGES: readonly NatRange[] = [
  natRange('10.96.0.0/12', 'the default Kubernetes Service range, which kube-proxy reaches through DNAT', true),
  natRange('172.16.0.0/12', 'where Docker puts its bridge networks (published ports and masquerade are NAT)', false),
  natRange('10.88.0.0/16', "Podman's default bridge network (published ports and masquerade are NAT)", false),
  natRange('100.64.0.0/10', 'the carrier-grade NAT range (RFC 6598)', false),
  natRange('10.0.2.0/24', 'the QEMU/VirtualBox user-mode NAT network', false),
];

const NAT_REMEDY =
  'TCP-AO MACs cover both ends\' addresses and ports, so any rewriting between the peers (docker -p, masquerade, ' +
  'load balancers, Kubernetes Services) makes every segment fail (TCPAOBad rises): give the AO leg a routed or direct ' +
  'path and configure each side with the address the other really uses';

interface LocalSubnet {
  readonly name: string;
  readonly cidr: string;
  readonly address: string;
  readonly family: IpFamily;
  readonly prefixLength: number;
}

function localSubnets(deps: DoctorDeps): LocalSubnet[] {
  const subnets: LocalSubnet[] = [];
  for (const [name, addresses] of Object.entries(deps.networkInterfaces())) {
    for (const info of addresses ?? []) {
      const family: IpFamily = info.family === 'IPv4' ? 4 : 6;
      const prefixLength = Number((info.cidr ?? '').split('/')[1]);
      if (info.cidr === null || !Number.isInteger(prefixLength) || info.address.includes('%')) continue;
      subnets.push({ name, cidr: info.cidr, address: info.address, family, prefixLength });
    }
  }
  return subnets;
}

/** A local subnet the peer prefix shares addresses with, if any. */
function attachedSubnet(subnets: readonly LocalSubnet[], peer: PeerPrefix): LocalSubnet | undefined {
  return subnets.find((subnet) => {
    if (subnet.family !== peer.family) return false;
    const list = new BlockList();
    list.addSubnet(subnet.address, subnet.prefixLength, peer.family === 4 ? 'ipv4' : 'ipv6');
    return list.check(peer.address, peer.family === 4 ? 'ipv4' : 'ipv6') || prefixContains(peer, subnet.address, subnet.family);
  });
}

function isLocalAddress(subnets: readonly LocalSubnet[], address: string, family: IpFamily): boolean {
  return isLoopback(address, family) || subnets.some((subnet) => subnet.family === family && subnet.address === address);
}

/** How a non-loopback peer is reached: directly attached, a likely NAT, or unknown. */
function wireCheck(id: string, title: string, subnets: readonly LocalSubnet[], peer: PeerPrefix, label: string): CheckResult {
  const shown = formatPrefix(peer);
  const nat = NAT_RANGES.find((range) => prefixContains(range.prefix, peer.address, peer.family));
  const detail = { peer: shown, natRange: nat === undefined ? null : formatPrefix(nat.prefix) };
  if (nat?.alwaysNat === true) {
    return { id, title, status: 'warn', finding: `${label} ${shown} is in ${formatPrefix(nat.prefix)}, ${nat.label}`, remedy: NAT_REMEDY, detail };
  }
  const attached = attachedSubnet(subnets, peer);
  if (attached !== undefined) {
    return {
      id,
      title,
      status: 'pass',
      finding: `${label} ${shown} is on ${attached.cidr} (${attached.name}), directly attached: no NAT on the path`,
      detail: { ...detail, interface: attached.name, subnet: attached.cidr },
    };
  }
  if (nat !== undefined) {
    return {
      id,
      title,
      status: 'warn',
      finding: `${label} ${shown} is in ${formatPrefix(nat.prefix)}, ${nat.label}, and not directly attached`,
      remedy: NAT_REMEDY,
      detail,
    };
  }
  return {
    id,
    title,
    status: 'warn',
    finding: `${label} ${shown} is not on a directly attached subnet: routers keep AO intact but a NAT breaks it, and no NAT can't be proven from here`,
    remedy: NAT_REMEDY,
    detail,
  };
}

/** Peer address checks: one per policy on a terminator, one for remote_ao on an initiator. */
export function checkPeers(deps: DoctorDeps, config: ParsedConfig): CheckResult[] {
  const subnets = localSubnets(deps);
  if (config.mode === 'initiator') return [checkInitiatorPeer(subnets, config)];
  const listen = config.terminator.listen_ao;
  return config.ao_policy.map((policy) => checkTerminatorPeer(subnets, listen, policy));
}

function checkTerminatorPeer(subnets: readonly LocalSubnet[], listen: Endpoint, policy: AoPolicy): CheckResult {
  const id = `peer.${policy.name}`;
  const title = `Peer of ao_policy ${policy.name}`;
  const peer = policy.peer_ip;
  const shown = formatPrefix(peer);
  const listenShown = formatEndpoint(listen);
  if (isUnspecified(peer.address, peer.family)) {
    return { id, title, status: 'skip', finding: `peer_ip ${shown} accepts any address, so there is no peer address to compare` };
  }
  const peerLoopback = isLoopback(peer.address, peer.family);
  const listenWildcard = isUnspecified(listen.host, listen.family);
  const listenLoopback = isLoopback(listen.host, listen.family);
  if (!listenWildcard && listenLoopback && !peerLoopback) {
    return {
      id,
      title,
      status: 'warn',
      finding: `listen_ao ${listenShown} is loopback, so peer ${shown} on another host can never reach it`,
      remedy: 'listen on the address the peer dials (or 0.0.0.0 / [::])',
      detail: { peer: shown, listen: listenShown },
    };
  }
  if (!listenWildcard && !listenLoopback && peerLoopback) {
    return {
      id,
      title,
      status: 'warn',
      finding: `loopback peer ${shown} never matches: a local client dialling ${listenShown} gets ${listen.host} as its source address`,
      remedy: `for a same-host test set peer_ip to ${listen.host}, otherwise to the real peer's address`,
      detail: { peer: shown, listen: listenShown },
    };
  }
  if (peerLoopback) {
    return { id, title, status: 'pass', finding: `loopback peer ${shown}: the AO leg stays on this host`, detail: { peer: shown } };
  }
  return wireCheck(id, title, subnets, peer, 'peer');
}

function checkInitiatorPeer(subnets: readonly LocalSubnet[], config: Extract<ParsedConfig, { readonly mode: 'initiator' }>): CheckResult {
  const id = 'peer.remote_ao';
  const title = 'Peer (remote_ao)';
  const remote = config.initiator.remote_ao;
  const remoteShown = formatEndpoint(remote);
  const remotePrefix: PeerPrefix = { address: remote.host, prefixLength: remote.family === 4 ? 32 : 128, family: remote.family };
  const remoteLoopback = isLoopback(remote.host, remote.family);
  const source = config.initiator.source_ip;
  const covering = selectInitiatorPolicies(config.ao_policy, remote).selected.map((policy) => policy.name);
  const detail = { remote: remoteShown, policies: covering };
  if (source !== undefined) {
    if (!isLocalAddress(subnets, source.address, source.family)) {
      return {
        id,
        title,
        status: 'warn',
        finding: `source_ip ${source.address} is not an address of this host: connects will fail (EADDRNOTAVAIL) until it is`,
        remedy: 'set source_ip to one of this host\'s addresses (ip -br addr) or remove it',
        detail: { ...detail, source: source.address },
      };
    }
    if (isLoopback(source.address, source.family) !== remoteLoopback) {
      return {
        id,
        title,
        status: 'warn',
        finding: `source_ip ${source.address} and remote_ao ${remoteShown} differ in being loopback: no route joins them`,
        remedy: 'use a source_ip on the interface that reaches remote_ao, or remove it',
        detail: { ...detail, source: source.address },
      };
    }
  }
  if (remoteLoopback) {
    return { id, title, status: 'pass', finding: `remote_ao ${remoteShown} is loopback: the AO leg stays on this host`, detail };
  }
  return wireCheck(id, title, subnets, remotePrefix, 'remote_ao');
}
