/**
 * IP literals, "host:port" endpoints and peer prefixes as the config writes
 * them. Only IP literals are accepted: TCP-AO keys match addresses, so a name
 * that resolves differently tomorrow would silently change which key applies.
 *
 * Messages built here never repeat the rejected text: a value that failed to
 * parse may be anything, including key material pasted into the wrong field.
 */
import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

export interface Endpoint {
  /** IP literal without brackets. */
  readonly host: string;
  readonly port: number;
  readonly family: IpFamily;
}

export interface PeerPrefix {
  /** Network address (IP literal, host bits zero). */
  readonly address: string;
  /** 0..32 for IPv4, 0..128 for IPv6; 0 only with the unspecified address (any peer). */
  readonly prefixLength: number;
  readonly family: IpFamily;
}

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const PORT_TEXT = /^\d{1,5}$/;
const PREFIX_TEXT = /^\d{1,3}$/;

function fail<T>(message: string): ParseResult<T> {
  return { ok: false, message };
}

function ipFamily(text: string): IpFamily | 0 {
  // node accepts zone ids ("fe80::1%eth0"); AO keys and our prefix math have no zone.
  if (text.includes('%')) return 0;
  const family = isIP(text);
  return family === 4 || family === 6 ? family : 0;
}

export interface EndpointRules {
  /** Whether 0.0.0.0 / [::] is acceptable (listen addresses) or not (addresses to dial). */
  readonly allowUnspecified: boolean;
}

export function parseEndpoint(text: string, rules: EndpointRules): ParseResult<Endpoint> {
  const usage = 'write "IPv4:port" or "[IPv6]:port", e.g. "127.0.0.1:5000" or "[::1]:5000"';
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1] ?? '';
    if (bracketed[2] === undefined) return fail(`missing ":port" after the bracketed address; ${usage}`);
    portText = bracketed[2];
    if (host.includes('%')) return fail('IPv6 zone ids ("%eth0") are not supported');
    if (ipFamily(host) !== 6) return fail(`the address in brackets is not an IPv6 literal; ${usage}`);
  } else {
    if (text.includes('%')) return fail('IPv6 zone ids ("%eth0") are not supported');
    if (ipFamily(text) === 6) return fail(`an IPv6 address needs brackets and a port; ${usage}`);
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail(`missing ":port"; ${usage}`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return fail(`IPv6 addresses go in brackets; ${usage}`);
    if (host === '') return fail(`missing the address before ":port"; ${usage}`);
    if (ipFamily(host) !== 4) {
      return fail(`the host is not an IP literal (hostnames are not resolved: TCP-AO keys match addresses); ${usage}`);
    }
  }
  if (!PORT_TEXT.test(portText)) return fail('the port must be an integer from 1 to 65535');
  const port = Number(portText);
  if (port < 1 || port > 65_535) return fail(`port ${port} is out of range; use 1 to 65535`);
  const family = ipFamily(host) as IpFamily;
  if (!rules.allowUnspecified && isUnspecified(host, family)) {
    return fail(`${host} is the unspecified address and cannot be dialled; give the peer's address`);
  }
  return { ok: true, value: { host, port, family } };
}

export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.family === 6 ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/** An IP literal on its own (no port), e.g. source_ip. */
export function parseIpLiteral(text: string): ParseResult<{ readonly address: string; readonly family: IpFamily }> {
  if (text.includes('%')) return fail('IPv6 zone ids ("%eth0") are not supported');
  const bare = /^\[(.*)\]$/.exec(text)?.[1] ?? text;
  const family = ipFamily(bare);
  if (family === 0) return fail('expected an IP literal such as "10.0.0.1" or "2001:db8::1" (no port)');
  return { ok: true, value: { address: bare, family } };
}

export function parsePeerPrefix(text: string): ParseResult<PeerPrefix> {
  const usage = 'write an address ("10.0.0.2", "2001:db8::2") or a prefix ("10.0.0.0/24", "::/0")';
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  if (addressText.includes('%')) return fail('IPv6 zone ids ("%eth0") are not supported');
  if (addressText.startsWith('[')) return fail(`peer_ip takes no brackets and no port; ${usage}`);
  const family = ipFamily(addressText);
  if (family === 0) return fail(`not an IP address or prefix; ${usage}`);
  const maxLength = family === 4 ? 32 : 128;
  const value = ipToBigInt(addressText, family);
  if (family === 6 && isV4MappedValue(value)) {
    return fail('IPv4-mapped IPv6 addresses are not accepted; write the IPv4 address itself');
  }
  const unspecified = value === 0n;
  let prefixLength: number;
  if (slash < 0) {
    // A bare unspecified address means "any peer", the only prefix the kernel takes with it.
    prefixLength = unspecified ? 0 : maxLength;
  } else {
    const lengthText = text.slice(slash + 1);
    if (!PREFIX_TEXT.test(lengthText) || Number(lengthText) > maxLength) {
      return fail(`the prefix length must be an integer from 0 to ${maxLength} for IPv${family}`);
    }
    prefixLength = Number(lengthText);
  }
  if (unspecified && prefixLength !== 0) {
    return fail(`${addressText} means any peer and takes only /0; give a network address for /${prefixLength}`);
  }
  if (!unspecified && prefixLength === 0) {
    return fail(`a /0 prefix matches every peer and must be written ${family === 4 ? '0.0.0.0/0' : '::/0'}`);
  }
  const network = value & prefixMask(prefixLength, family);
  if (network !== value) {
    const written = bigIntToIp(network, family);
    return fail(`${addressText}/${prefixLength} has host bits set; the kernel needs the network address: ${written}/${prefixLength}`);
  }
  return { ok: true, value: { address: addressText, prefixLength, family } };
}

export function formatPrefix(prefix: PeerPrefix): string {
  return `${prefix.address}/${prefix.prefixLength}`;
}

function prefixMask(prefixLength: number, family: IpFamily): bigint {
  const bits = family === 4 ? 32n : 128n;
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefixLength))) & all;
}

function ipv4ToBigInt(text: string): bigint {
  return text.split('.').reduce((sum, part) => (sum << 8n) | BigInt(Number(part)), 0n);
}

/** The numeric value of an IP literal that isIP() accepted. */
export function ipToBigInt(text: string, family: IpFamily): bigint {
  if (family === 4) return ipv4ToBigInt(text);
  let literal = text;
  const lastColon = literal.lastIndexOf(':');
  const tail = literal.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4ToBigInt(tail);
    literal = `${literal.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = literal.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? [] : new Array<string>(8 - headGroups.length - restGroups.length).fill('0');
  return [...headGroups, ...zeros, ...restGroups].reduce((sum, group) => (sum << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function bigIntToIp(value: bigint, family: IpFamily): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString()).join('.');
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 writes it.
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === '0') length++;
    if (length > bestLength && length > 1) {
      bestStart = start;
      bestLength = length;
    }
  }
  if (bestStart < 0) return groups.join(':');
  const head = groups.slice(0, bestStart).join(':');
  const rest = groups.slice(bestStart + bestLength).join(':');
  return `${head}::${rest}`;
}

function isV4MappedValue(value: bigint): boolean {
  return value >> 32n === 0xffffn;
}

export function isUnspecified(address: string, family: IpFamily): boolean {
  return ipToBigInt(address, family) === 0n;
}

export function isLoopback(address: string, family: IpFamily): boolean {
  const value = ipToBigInt(address, family);
  if (family === 4) return value >> 24n === 127n;
  return value === 1n || (isV4MappedValue(value) && (value & 0xffffffffn) >> 24n === 127n);
}

/** Whether `address` lies inside `prefix` (same family only). */
export function prefixContains(prefix: PeerPrefix, address: string, family: IpFamily): boolean {
  if (prefix.family !== family) return false;
  const mask = prefixMask(prefix.prefixLength, family);
  return (ipToBigInt(address, family) & mask) === ipToBigInt(prefix.address, family);
}

/** Whether two prefixes share at least one address: then one contains the other. */
export function prefixesOverlap(a: PeerPrefix, b: PeerPrefix): boolean {
  if (a.family !== b.family) return false;
  const shorter = a.prefixLength <= b.prefixLength ? a : b;
  const longer = shorter === a ? b : a;
  return prefixContains(shorter, longer.address, longer.family);
}

/**
 * A socket peer's address as Node reports it (`socket.remoteAddress`), with
 * IPv4 peers of a dual-stack socket (::ffff:a.b.c.d) written as IPv4.
 */
export function parseSocketAddress(raw: string | undefined): { readonly address: string; readonly family: IpFamily } | undefined {
  if (raw === undefined || raw === '') return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(raw);
  if (mapped?.[1] !== undefined) return { address: mapped[1], family: 4 };
  return { address: raw, family: isIP(raw) === 6 ? 6 : 4 };
}
