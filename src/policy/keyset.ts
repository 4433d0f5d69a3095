/**
 * Key generations: the keys a config asks for, in the shape the sockets hold
 * them, and the comparisons a reload needs (same ids, same material). Key
 * bytes stay inside their SecretKey, the one owner: toKeySpec() hands the
 * addon the SecretKey itself, and src/native/args.ts reveals a copy for the call
 * and zeroes it afterwards, so plans and reloads hold no copies.
 */
import { timingSafeEqual } from 'node:crypto';

import { prefixContains, type IpFamily } from '../config/address.js';
import type { SecretKey } from '../config/keys.js';
import type { ResolvedAoPolicy, SidecarConfig } from '../config/load.js';
import type { KeyRole } from '../config/schema.js';
import { addressBytes, type AoKeyInfo, type AoKeySpec, type MacAlgorithm } from '../native/index.js';

/** One master key tuple as a generation wants it on sockets. */
export interface WireKey {
  readonly policy: string;
  readonly peer: string;
  readonly prefixLength: number;
  readonly family: IpFamily;
  readonly ifindex: number;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: MacAlgorithm;
  readonly maclen: number;
  readonly excludeOptions: boolean;
  readonly role: KeyRole;
  readonly secret: SecretKey;
}

export interface GenerationPolicy {
  readonly name: string;
  readonly peer: string;
  readonly prefixLength: number;
  readonly family: IpFamily;
  readonly keys: readonly WireKey[];
  readonly preferred: WireKey;
}

/** The key state of one loaded config; `number` counts successful loads from 1. */
export interface KeyGeneration {
  readonly number: number;
  readonly policies: readonly GenerationPolicy[];
}

/** The kernel keys a key by peer prefix, VRF and both ids; the address is compared as bytes. */
export function keyIdentity(key: {
  readonly peer: string;
  readonly prefixLength: number;
  readonly ifindex: number;
  readonly sendId: number;
  readonly recvId: number;
}): string {
  return `${Buffer.from(addressBytes(key.peer)).toString('hex')}/${key.prefixLength}/${key.ifindex}/${key.sendId}/${key.recvId}`;
}

/** A policy's keys in the shape sockets hold them, every role included. */
export function wireKeysOf(policy: ResolvedAoPolicy): WireKey[] {
  return policy.keys.map(
    (entry): WireKey => ({
      policy: policy.name,
      peer: policy.peer_ip.address,
      prefixLength: policy.peer_ip.prefixLength,
      family: policy.peer_ip.family,
      ifindex: policy.vrf_ifindex,
      sendId: entry.send_id,
      recvId: entry.recv_id,
      algorithm: entry.mac_alg,
      maclen: entry.maclen,
      excludeOptions: entry.exclude_tcp_options,
      role: entry.role,
      secret: entry.secret,
    }),
  );
}

function policyKeys(policy: ResolvedAoPolicy): GenerationPolicy {
  const keys = wireKeysOf(policy);
  const preferred = keys.find((key) => key.role === 'preferred') ?? keys[0];
  if (preferred === undefined) throw new Error(`policy ${policy.name} has no key`);
  return {
    name: policy.name,
    peer: policy.peer_ip.address,
    prefixLength: policy.peer_ip.prefixLength,
    family: policy.peer_ip.family,
    keys,
    preferred,
  };
}

export function generationFromConfig(config: SidecarConfig, number: number): KeyGeneration {
  return { number, policies: config.activePolicies.map(policyKeys) };
}

/** Every key of the generation, in policy order. */
export function allKeys(generation: KeyGeneration): WireKey[] {
  return generation.policies.flatMap((policy) => policy.keys);
}

/** What a socket connected to `peerAddress` should hold: the keys of every policy covering it, and the preferred key of the first. */
export function keysForPeer(
  generation: KeyGeneration,
  peerAddress: string,
  family: IpFamily,
): { readonly keys: readonly WireKey[]; readonly preferred: WireKey | undefined } {
  const matching = generation.policies.filter((policy) =>
    prefixContains({ address: policy.peer, prefixLength: policy.prefixLength, family: policy.family }, peerAddress, family),
  );
  return { keys: matching.flatMap((policy) => policy.keys), preferred: matching[0]?.preferred };
}

/** Keys to install on sockets made from now on: all but the deprecated ones. */
export function keysForNewSockets(keys: readonly WireKey[]): WireKey[] {
  return keys.filter((key) => key.role !== 'deprecated');
}

/** True when both keys have the same algorithm, MAC length, flags and bytes. */
export function sameKeyMaterial(a: WireKey, b: WireKey): boolean {
  if (a.algorithm !== b.algorithm || a.maclen !== b.maclen || a.excludeOptions !== b.excludeOptions) return false;
  if (a.secret.byteLength !== b.secret.byteLength) return false;
  const left = a.secret.reveal();
  const right = b.secret.reveal();
  try {
    return timingSafeEqual(left, right);
  } finally {
    left.fill(0);
    right.fill(0);
  }
}

/** Identities present in both generations whose key changed (new bytes, algorithm, MAC length or options flag under the same ids). */
export function changedIdentities(before: KeyGeneration, after: KeyGeneration): Set<string> {
  const old = new Map(allKeys(before).map((key) => [keyIdentity(key), key]));
  const changed = new Set<string>();
  for (const key of allKeys(after)) {
    const identity = keyIdentity(key);
    const previous = old.get(identity);
    if (previous !== undefined && !sameKeyMaterial(previous, key)) changed.add(identity);
  }
  return changed;
}

/** The addon's view of a key; the bytes stay in their SecretKey until the addon call. */
export function toKeySpec(key: WireKey, flags: { readonly setCurrent?: boolean; readonly setRnext?: boolean } = {}): AoKeySpec {
  return {
    peer: key.peer,
    prefixLength: key.prefixLength,
    sendId: key.sendId,
    recvId: key.recvId,
    algorithm: key.algorithm,
    key: key.secret,
    maclen: key.maclen,
    ifindex: key.ifindex,
    excludeOptions: key.excludeOptions,
    ...(flags.setCurrent === undefined ? {} : { setCurrent: flags.setCurrent }),
    ...(flags.setRnext === undefined ? {} : { setRnext: flags.setRnext }),
  };
}

/** A loggable name for a key: policy and ids, never bytes. */
export function describeKey(key: { readonly sendId: number; readonly recvId: number; readonly policy?: string }): string {
  return `${key.policy === undefined ? '' : `${key.policy} `}send_id ${key.sendId}/recv_id ${key.recvId}`;
}

/** The identity of a key the kernel reports. */
export function installedIdentity(key: AoKeyInfo): string {
  return keyIdentity(key);
}
