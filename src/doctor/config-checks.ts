/**
 * Checks of a sidecar config against this host: it validates, its keys
 * resolve, its listen address can be bound, its local app endpoint answers,
 * and its peer addresses are not a loopback or NAT mismatch that breaks AO.
 * No message here contains key material: key checks report lengths and the
 * source's name only.
 */
import { BlockList } from 'node:net';
import { resolve } from 'node:path';

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
import type { IndexedPolicy } from '../config/document.js';
import { inspectConfigFileAsync, wipeInspectedKeys, type ConfigInspection, type InspectedKey } from '../config/inspect.js';
import { formatKeySource, type KeySourceSpec } from '../config/keys.js';
import type { ConfigProblem } from '../config/problems.js';
import type { AoKeyEntry, AoPolicy, MacAlgorithm, Mode, ParsedConfig } from '../config/schema.js';
import { selectInitiatorPolicies } from '../config/policy.js';
import { errnoName, oneLine } from './errno.js';
import type { CheckResult, DoctorDeps } from './types.js';

/** What the later checks need from the config file, as far as it could be parsed. */
export interface DoctorConfigInspection {
  readonly validity: CheckResult;
  /** The whole document, when it passes the schema (key sources parsed, not resolved). */
  readonly parsed: ParsedConfig | undefined;
  /** Each [[ao_policy]] that passes the schema on its own, with its position and what each of its keys resolved to. */
  readonly policies: readonly (IndexedPolicy & { readonly keys: readonly KeyFinding[] })[];
}

/** A key's length once resolved (the bytes are wiped), or the problem that stopped it resolving. */
interface KeyFinding {
  readonly entry: AoKeyEntry;
  readonly bytes: number | undefined;
  readonly problem: ConfigProblem | undefined;
}

/** Loader warnings that later checks report in their own words. */
const WARNINGS_COVERED_ELSEWHERE = new Set(['initiator.listen_plain', 'terminator.forward_plain']);

export async function inspectConfig(deps: DoctorDeps, configPath: string, mode: Mode | undefined): Promise<DoctorConfigInspection> {
  const id = 'config.valid';
  const title = 'Config validates';
  const options = mode === undefined ? { env: deps.env } : { mode, env: deps.env };
  let inspection: ConfigInspection;
  try {
    // Read once, through the loader's own reader: a FIFO or a device as the config is refused, never waited on.
    inspection = await inspectConfigFileAsync(resolve(configPath), options);
  } catch (error) {
    const validity: CheckResult = {
      id,
      title,
      status: 'fail',
      finding: `the config could not be checked: ${oneLine(error)}`,
      remedy: 'run `tcpao-proxy check-config --config FILE` for details',
    };
    return { validity, parsed: undefined, policies: [] };
  }
  // The doctor installs nothing: the key checks need only each key's length.
  const policies = inspection.policies.map((policy) => ({ ...policy, keys: policy.keys.map(lengthOnly) }));
  wipeInspectedKeys(inspection);
  return { validity: validityCheck(id, title, inspection), parsed: inspection.parsed, policies };
}

function lengthOnly(key: InspectedKey): KeyFinding {
  return { entry: key.entry, bytes: key.secret?.byteLength, problem: key.problem };
}

function validityCheck(id: string, title: string, inspection: ConfigInspection): CheckResult {
  const { config, parsed } = inspection;
  if (config !== undefined) {
    const warnings = inspection.warnings.filter((warning) => !WARNINGS_COVERED_ELSEWHERE.has(warning.path));
    const shape = `valid ${config.mode} config, ${config.activePolicies.length} of ${config.ao_policy.length} ao_policy installed on this side`;
    return warnings.length === 0
      ? { id, title, status: 'pass', finding: shape }
      : {
          id,
          title,
          status: 'warn',
          finding: `${shape}; ${warnings[0]?.path}: ${warnings[0]?.message}`,
          remedy: warnings.map((warning) => `${warning.path}: ${warning.message}`).join('; '),
          detail: { warnings: warnings.map((warning) => ({ path: warning.path, message: warning.message })) },
        };
  }
  // Unresolvable keys are the key checks' findings; the document itself may be fine.
  const structural = inspection.problems.filter((problem) => problem.code !== 'ERR_TCPAO_KEY_SOURCE');
  if (structural.length === 0 && parsed !== undefined) {
    return { id, title, status: 'pass', finding: `valid ${parsed.mode} config (its key sources are checked below)` };
  }
  const problems = structural.length === 0 ? inspection.problems : structural;
  const first = problems[0] as ConfigProblem;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  return {
    id,
    title,
    status: 'fail',
    finding: `${first.path}: ${first.message}${more}`,
    remedy: `fix the config: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
    detail: { problems: problems.map((problem) => ({ code: problem.code, path: problem.path, message: problem.message })) },
  };
}

/**
 * One check per key: each policy's key_source, or each of its [[ao_policy.key]]
 * tables, preferred or not (the sidecar resolves them all and exits 2 on any).
 * Present, readable, 1..80 bytes. The inspection wiped the key at once.
 */
export function checkKeySources(inspection: DoctorConfigInspection): CheckResult[] {
  const seenNames = new Set<string>();
  return inspection.policies.flatMap(({ index, policy, keys }) => {
    const base = seenNames.has(policy.name) ? `key.${policy.name}#${index}` : `key.${policy.name}`;
    seenNames.add(policy.name);
    return keys.map((outcome) => {
      const key = outcome.entry;
      const single = key.position === undefined;
      const id = single ? base : `${base}.key[${key.position}]`;
      const title = single
        ? `Key of ao_policy ${policy.name}`
        : `Key ${key.position} of ao_policy ${policy.name} (send_id ${key.send_id}, recv_id ${key.recv_id}, ${key.role})`;
      return checkKey(outcome, { id, title, index, policy: policy.name, position: key.position, spec: key.key_source, algorithm: key.mac_alg });
    });
  });
}

interface KeyUnderCheck {
  readonly id: string;
  readonly title: string;
  readonly index: number;
  readonly policy: string;
  readonly position: number | undefined;
  readonly spec: KeySourceSpec;
  readonly algorithm: MacAlgorithm;
}

function checkKey(outcome: KeyFinding, key: KeyUnderCheck): CheckResult {
  const { id, title, spec } = key;
  const source = formatKeySource(spec);
  const detail = {
    policy: key.policy,
    index: key.index,
    ...(key.position === undefined ? {} : { key: key.position }),
    source,
    algorithm: key.algorithm,
  };
  if (outcome.bytes !== undefined) {
    const length = outcome.bytes;
    return { id, title, status: 'pass', finding: `${length} bytes from ${source}`, detail: { ...detail, bytes: length } };
  }
  const message = outcome.problem?.message ?? `${source} cannot be resolved`;
  const { kind, ref, encoding } = spec;
  const keyShape = `a key of 1 to 80 bytes${encoding === 'raw' ? '' : `, ${encoding}-encoded`}`;
  const remedy =
    kind === 'env'
      ? `set ${ref} in the sidecar's environment (docker: -e ${ref} or an env file; never on the command line) to ${keyShape}`
      : `make ${ref} a regular file this user can read, holding ${keyShape}`;
  return { id, title, status: 'fail', finding: message, remedy, detail };
}

/** The address the sidecar listens on, named as the config names it. */
export function listenEndpoint(config: ParsedConfig): { readonly field: string; readonly endpoint: Endpoint } {
  return config.mode === 'initiator'
    ? { field: 'listen_plain', endpoint: config.initiator.listen_plain }
    : { field: 'listen_ao', endpoint: config.terminator.listen_ao };
}

export async function checkListen(deps: DoctorDeps, config: ParsedConfig): Promise<CheckResult> {
  const { field, endpoint } = listenEndpoint(config);
  const id = `listen.${field}`;
  const title = `Listen address ${field}`;
  const where = formatEndpoint(endpoint);
  const detail = { field, address: where };
  try {
    await deps.tryBind(endpoint.host, endpoint.port);
    return { id, title, status: 'pass', finding: `${where} can be bound`, detail };
  } catch (error) {
    const code = errnoName(error);
    const failed = (finding: string, remedy: string): CheckResult => ({
      id,
      title,
      status: 'fail',
      finding: `${where}: ${finding}`,
      remedy,
      detail: { ...detail, code: code ?? null },
    });
    switch (code) {
      case 'EADDRINUSE':
        return failed(
          'port already in use',
          `stop what holds it (ss -ltnp 'sport = :${endpoint.port}' shows it; a sidecar already running on this config counts) or choose another port`,
        );
      case 'EADDRNOTAVAIL':
        return failed(
          'address not on this host',
          `use an address this host has (ip -br addr), or 0.0.0.0 / [::] for all; in a container, the container's own address`,
        );
      case 'EACCES':
        return failed(
          'permission denied',
          `port ${endpoint.port} needs CAP_NET_BIND_SERVICE (docker: --cap-add NET_BIND_SERVICE), or use a port at or above ip_unprivileged_port_start`,
        );
      default:
        return failed(`cannot be bound: ${code ?? oneLine(error)}`, 'check the address and port in the config');
    }
  }
}

/**
 * The local app's side: the terminator's forward_plain should answer (a
 * refused connect is only "not yet up"); the initiator's listen_plain should
 * be loopback so plain traffic never leaves the host.
 */
export async function checkAppEndpoint(deps: DoctorDeps, config: ParsedConfig, timeoutMs: number): Promise<CheckResult> {
  if (config.mode === 'initiator') {
    const endpoint = config.initiator.listen_plain;
    const id = 'app.listen_plain';
    const title = 'Local app side (listen_plain)';
    const where = formatEndpoint(endpoint);
    if (isLoopback(endpoint.host, endpoint.family)) {
      return { id, title, status: 'pass', finding: `${where} is loopback: the plain leg stays on this host` };
    }
    return {
      id,
      title,
      status: 'warn',
      finding: `${where} is not loopback: plain, unauthenticated traffic can arrive from off the host`,
      remedy: `listen on 127.0.0.1:${endpoint.port} or [::1]:${endpoint.port} and point the local app there`,
    };
  }
  const endpoint = config.terminator.forward_plain;
  const id = 'app.forward_plain';
  const title = 'Local app (forward_plain)';
  const where = formatEndpoint(endpoint);
  const offHost = isLoopback(endpoint.host, endpoint.family) ? '' : '; it is not loopback, so the plain leg crosses the network';
  try {
    await deps.tryConnect(endpoint.host, endpoint.port, timeoutMs);
  } catch (error) {
    const code = errnoName(error);
    const finding =
      code === 'ECONNREFUSED'
        ? `not yet up: nothing accepts connections on ${where}`
        : code === 'ETIMEDOUT'
          ? `not yet up: no answer from ${where} within ${timeoutMs} ms`
          : `not reachable: connecting to ${where} failed with ${code ?? oneLine(error)}`;
    return {
      id,
      title,
      status: 'warn',
      finding: `${finding}${offHost}`,
      remedy: 'start the app; the sidecar may start first, but every relayed session fails until the app accepts connections',
      detail: { address: where, code: code ?? null },
    };
  }
  if (offHost !== '') {
    return {
      id,
      title,
      status: 'warn',
      finding: `${where} accepts connections${offHost}`,
      remedy: 'run the app on this host and forward to a loopback address',
      detail: { address: where },
    };
  }
  return { id, title, status: 'pass', finding: `${where} accepts connections`, detail: { address: where } };
}

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

/** The algorithms a config uses, to tell a refused algorithm that matters from one that does not. */
export function algorithmsUsed(inspection: DoctorConfigInspection): ReadonlySet<string> {
  // Every key's, not only the preferred one's: an accept key the kernel refuses stops the sidecar too.
  return new Set(inspection.policies.flatMap(({ policy }) => policy.keys.map((key) => key.mac_alg)));
}
