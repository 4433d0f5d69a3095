// Argument checks for the binding. Each throws ERR_TCPAO_INVALID_ARGUMENT
// naming the argument, before any syscall; the addon checks again, defensively.
import * as net from 'node:net';

import { TcpAoError } from '../errors.js';
import { cmacKdfKey } from './cmac.js';
import { MAX_IFINDEX, MAX_KEY_ID, MAX_KEYS_PER_SOCKET, MAX_MACLEN, MAX_PORT, TCP_AO_MAXKEYLEN } from './limits.js';
import { KERNEL_ALGORITHMS, type AoKeySpec, type KeyMaterial, type MacAlgorithm, type NativeKey } from './types.js';

/** Largest fd number: a C int. */
export const MAX_FD = 2 ** 31 - 1;

export function invalid(what: string, message: string): TcpAoError {
  return new TcpAoError('ERR_TCPAO_INVALID_ARGUMENT', message, { detail: { argument: what } });
}

export function isInteger(value: unknown, lo: number, hi: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= lo && value <= hi;
}

export function checkInteger(value: unknown, what: string, lo: number, hi: number): number {
  if (!isInteger(value, lo, hi)) throw invalid(what, `${what} must be an integer from ${lo} to ${hi}`);
  return value;
}

export function checkOptionalInteger(value: unknown, what: string, lo: number, hi: number, fallback: number): number {
  return value === undefined ? fallback : checkInteger(value, what, lo, hi);
}

export function checkOptionalBoolean(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid(what, `${what} must be true or false`);
  return value;
}

export function checkObject(value: unknown, what: string): object {
  if (typeof value !== 'object' || value === null) throw invalid(what, `${what} must be an object`);
  return value;
}

/** Checks an IP literal (no zone, no host name) and returns its family. */
export function checkAddress(value: unknown, what: string): 4 | 6 {
  if (typeof value !== 'string' || value.includes('%')) {
    throw invalid(what, `${what} must be an IPv4 or IPv6 address literal`);
  }
  const family = net.isIP(value);
  if (family === 4 || family === 6) return family;
  throw invalid(what, `${what} must be an IPv4 or IPv6 address literal, got ${JSON.stringify(value.slice(0, 64))}`);
}

/** The 4 or 16 address bytes of a literal already checked by checkAddress(). */
export function addressBytes(address: string): Uint8Array {
  if (net.isIPv4(address)) return Uint8Array.from(address.split('.').map(Number));
  const out = new Uint8Array(16);
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const tail: number[] = [];
  if (dotted !== null && dotted[1] !== undefined) {
    tail.push(...dotted[1].split('.').map(Number));
    text = text.slice(0, text.length - dotted[1].length) + '0:0';
  }
  const halves = text.split('::');
  const head = halves[0] === '' || halves[0] === undefined ? [] : halves[0].split(':');
  const rest = halves.length > 1 && halves[1] !== '' && halves[1] !== undefined ? halves[1].split(':') : [];
  const groups = [...head, ...new Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  groups.forEach((group, i) => {
    const word = parseInt(group, 16);
    out[i * 2] = word >> 8;
    out[i * 2 + 1] = word & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

export function checkPeerPrefix(
  peer: unknown,
  prefixLength: unknown,
  what: string,
): { peer: string; prefixLength: number; family: 4 | 6 } {
  const family = checkAddress(peer, `${what}.peer`);
  const address = peer as string;
  const max = family === 4 ? 32 : 128;
  const prefix = checkOptionalInteger(prefixLength, `${what}.prefixLength`, 0, max, max);
  const bytes = addressBytes(address);
  const isAny = bytes.every((b) => b === 0);
  // The kernel's rules for a key address (tcp_ao_verify_ipv4/ipv6()).
  if (prefix === 0 && !isAny) {
    throw invalid(`${what}.prefixLength`, `${what}.prefixLength 0 needs ${what}.peer ${family === 4 ? '0.0.0.0' : '::'}`);
  }
  if (prefix !== 0 && isAny) {
    throw invalid(`${what}.peer`, `${what}.peer ${address} (any) needs ${what}.prefixLength 0`);
  }
  for (let bit = prefix; bit < max; bit++) {
    if (((bytes[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) !== 0) {
      throw invalid(
        `${what}.prefixLength`,
        `${what}.peer ${address} has host bits set beyond /${prefix}; give the network address of the prefix`,
      );
    }
  }
  return { peer: address, prefixLength: prefix, family };
}


/** A key as checked here: the family for the socket check, and whether `key` is a revealed copy to zero. */
export type CheckedKey = NativeKey & { readonly family: 4 | 6; readonly revealed: boolean };

function isKeyMaterial(value: unknown): value is KeyMaterial {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'reveal') === 'function';
}

export function toNativeKey(value: unknown, what: string): CheckedKey {
  const spec = checkObject(value, what) as Partial<Record<keyof AoKeySpec, unknown>>;
  const { peer, prefixLength, family } = checkPeerPrefix(spec.peer, spec.prefixLength, what);
  const sendId = checkInteger(spec.sendId, `${what}.sendId`, 0, MAX_KEY_ID);
  const recvId = checkInteger(spec.recvId, `${what}.recvId`, 0, MAX_KEY_ID);
  const algorithmName = spec.algorithm;
  if (typeof algorithmName !== 'string' || !Object.hasOwn(KERNEL_ALGORITHMS, algorithmName)) {
    throw invalid(`${what}.algorithm`, `${what}.algorithm must be one of ${Object.keys(KERNEL_ALGORITHMS).join(', ')}`);
  }
  const algorithm = algorithmName as MacAlgorithm;
  const given = spec.key;
  let key: Uint8Array;
  let revealed = false;
  if (given instanceof Uint8Array) {
    key = given;
  } else if (isKeyMaterial(given)) {
    key = given.reveal();
    revealed = true;
  } else {
    throw invalid(`${what}.key`, `${what}.key must be a Uint8Array or key material`);
  }
  if (key.length < 1 || key.length > TCP_AO_MAXKEYLEN) {
    if (revealed) key.fill(0);
    throw invalid(`${what}.key`, `${what}.key must be 1 to ${TCP_AO_MAXKEYLEN} bytes long, got ${key.length}`);
  }
  const base = {
    family,
    revealed,
    peer,
    prefixLength,
    sendId,
    recvId,
    algorithm: KERNEL_ALGORITHMS[algorithm],
    key,
    maclen: checkOptionalInteger(spec.maclen, `${what}.maclen`, 0, MAX_MACLEN, 0),
    ifindex: checkOptionalInteger(spec.ifindex, `${what}.ifindex`, 0, MAX_IFINDEX, 0),
    excludeOptions: checkOptionalBoolean(spec.excludeOptions, `${what}.excludeOptions`),
    setCurrent: checkOptionalBoolean(spec.setCurrent, `${what}.setCurrent`),
    setRnext: checkOptionalBoolean(spec.setRnext, `${what}.setRnext`),
  };
  if (algorithm === 'aes-128-cmac' && key.length !== 16) return { ...base, kernelKey: cmacKdfKey(key) };
  return base;
}

export function toNativeKeys(value: unknown, what: string, family: 4 | 6): CheckedKey[] {
  if (!Array.isArray(value)) throw invalid(what, `${what} must be an array of keys`);
  if (value.length === 0) {
    throw invalid(what, `${what} is empty: a TCP-AO socket needs at least one key (without keys it would be plain TCP)`);
  }
  if (value.length > MAX_KEYS_PER_SOCKET) {
    throw invalid(what, `${what} holds ${value.length} keys; at most ${MAX_KEYS_PER_SOCKET} are allowed`);
  }
  const keys: CheckedKey[] = [];
  try {
    value.forEach((key: unknown, i) => {
      const checked = toNativeKey(key, `${what}[${i}]`);
      keys.push(checked);
      if (checked.family !== family) {
        throw invalid(
          `${what}[${i}].peer`,
          `${what}[${i}].peer is IPv${checked.family} but the socket is IPv${family}; use a separate socket per address family`,
        );
      }
    });
  } catch (err) {
    wipeCopies(keys);
    throw err;
  }
  return keys;
}

/** Zeroes what this module made from key bytes: the KDF output and revealed copies (the addon copied both). */
export function wipeCopies(keys: readonly CheckedKey[]): void {
  for (const key of keys) {
    key.kernelKey?.fill(0);
    if (key.revealed) key.key.fill(0);
  }
}

export function checkFd(fd: unknown): number {
  if (!isInteger(fd, 0, MAX_FD)) throw invalid('fd', 'fd must be a non-negative integer (an open socket)');
  return fd;
}

export function checkPort(port: unknown, lo: number): number {
  return checkInteger(port, 'port', lo, MAX_PORT);
}

export function endpoint(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

