/**
 * The typed boundary to the C++ addon. This is the only module that loads
 * build/Release/tcpao.node; everything else imports these types and functions.
 *
 * Every argument is checked here before any syscall (the addon checks again,
 * defensively). Native failures become TcpAoError: ENOPROTOOPT means the
 * kernel lacks TCP-AO (ERR_TCPAO_UNSUPPORTED), anything else is
 * ERR_TCPAO_SYSCALL with errno/syscall/sysCode and the native error as cause.
 * Key bytes never appear in a message.
 */

import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';

import { TcpAoError, type ErrorCode } from './errors';

export type MacAlgorithm = 'hmac-sha1' | 'hmac-sha256' | 'aes-128-cmac';

/**
 * Key bytes held by an owner that zeroes them (SecretKey): reveal() returns a
 * fresh copy, which this module zeroes as soon as the addon has copied it.
 */
export interface KeyMaterial {
  readonly byteLength: number;
  reveal(): Uint8Array;
}

/** One master key tuple to install on a socket. `key` is never logged. */
export interface AoKeySpec {
  /** Peer address (IPv4 or IPv6 literal) the key applies to. */
  readonly peer: string;
  /** Prefix length; default 32 for IPv4, 128 for IPv6. */
  readonly prefixLength?: number;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: MacAlgorithm;
  /**
   * 1 to 80 bytes: a Uint8Array the caller owns, or key material whose
   * revealed copy lives only for the duration of the call.
   */
  readonly key: Uint8Array | KeyMaterial;
  /** MAC length in bytes; 0 or absent means the kernel default (12). */
  readonly maclen?: number;
  /** VRF (L3 master device) ifindex; 0 or absent means any. */
  readonly ifindex?: number;
  /** Exclude TCP options other than AO from the MAC (TCP_AO_KEYF_EXCLUDE_OPT). */
  readonly excludeOptions?: boolean;
  readonly setCurrent?: boolean;
  readonly setRnext?: boolean;
}

/** Identifies a key on a socket for deletion. */
export interface AoKeyRef {
  readonly peer: string;
  readonly prefixLength?: number;
  readonly sendId: number;
  readonly recvId: number;
  readonly ifindex?: number;
  /** Force-move current/RNext while deleting (only when the peer ignores RNextKeyID). */
  readonly newCurrent?: number;
  readonly newRnext?: number;
}

/** What the kernel reports about one installed key; never the key bytes. */
export interface AoKeyInfo {
  readonly peer: string;
  readonly prefixLength: number;
  readonly sendId: number;
  readonly recvId: number;
  /** Kernel algorithm name as reported (cmac(aes128) comes back as cmac(aes)). */
  readonly kernelAlgorithm: string;
  readonly maclen: number;
  readonly keyflags: number;
  readonly keylen: number;
  readonly ifindex: number;
  readonly isCurrent: boolean;
  readonly isRnext: boolean;
  readonly pktGood: bigint;
  readonly pktBad: bigint;
}

export interface AoInfo {
  readonly aoRequired: boolean;
  readonly acceptIcmps: boolean;
  readonly currentKey: number;
  readonly rnextKey: number;
  readonly pktGood: bigint;
  readonly pktBad: bigint;
  readonly pktKeyNotFound: bigint;
  readonly pktAoRequired: bigint;
  readonly pktDroppedIcmp: bigint;
}

export interface AoInfoUpdate {
  readonly currentKey?: number;
  readonly rnextKey?: number;
  readonly aoRequired?: boolean;
  readonly acceptIcmps?: boolean;
}

export interface KeepaliveOptions {
  readonly idleSecs: number;
  readonly intervalSecs: number;
  readonly probes: number;
}

export type ProbeResult =
  | { readonly supported: true }
  | { readonly supported: false; readonly errno: number; readonly code: string; readonly reason: string };

export interface AoListenOptions {
  readonly host: string;
  readonly port: number;
  readonly keys: readonly AoKeySpec[];
  readonly backlog?: number;
}

export interface AoConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly keys: readonly AoKeySpec[];
  readonly localAddress?: string;
  readonly timeoutMs: number;
}

/** The kernel crypto names (RFC 5926 algorithms only). */
export const KERNEL_ALGORITHMS: Readonly<Record<MacAlgorithm, string>> = Object.freeze({
  'hmac-sha1': 'hmac(sha1)',
  'hmac-sha256': 'hmac(sha256)',
  'aes-128-cmac': 'cmac(aes128)',
});

export const TCP_AO_MAXKEYLEN = 80;
/** Largest MAC that fits the SYN option space next to MSS, timestamps and wscale. */
export const MAX_MACLEN = 16;
export const TCP_AO_KEYF_IFINDEX = 1;
export const TCP_AO_KEYF_EXCLUDE_OPT = 2;

/** The reason probeTcpAo() gives when the kernel lacks TCP-AO. */
export const UNSUPPORTED_REASON = 'kernel built without CONFIG_TCP_AO';

const UNSUPPORTED_ADVICE =
  'the kernel was built without CONFIG_TCP_AO; run on a Linux 6.7 or later kernel built with CONFIG_TCP_AO=y';

/** The interface the rest of the code depends on; unit tests pass a mock. */
export interface TcpAoBinding {
  probeTcpAo(): ProbeResult;
  /**
   * A listening fd with every key installed and verified and ao_required set,
   * ready for `net.Server.listen({ fd })`. An IPv6 host gets IPV6_V6ONLY=1:
   * IPv4 peers need their own IPv4 listener, so every key must match the
   * host's address family.
   */
  createAoListener(opts: AoListenOptions): number;
  /**
   * A connected fd, ready for `new net.Socket({ fd, readable: true, writable: true })`.
   * Keys and ao_required are set before connect(); on any failure the fd is
   * closed and the promise rejects, so a plain socket is never handed out.
   */
  connectAo(opts: AoConnectOptions): Promise<number>;
  addKey(fd: number, key: AoKeySpec): void;
  deleteKey(fd: number, ref: AoKeyRef): void;
  /** SO_KEEPALIVE with idle time, probe interval and probe count (libuv sets only the idle time). */
  setKeepalive(fd: number, keepalive: KeepaliveOptions): void;
  getKeys(fd: number): AoKeyInfo[];
  getAoInfo(fd: number): AoInfo;
  setAoInfo(fd: number, update: AoInfoUpdate): void;
  openScratchSocket(family: 4 | 6): number;
  closeFd(fd: number): void;
  socketFd(sock: net.Socket): number;
}

/** A key as the addon takes it: kernel algorithm name, explicit defaults. */
export interface NativeKey {
  readonly peer: string;
  readonly prefixLength: number;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: string;
  readonly key: Uint8Array;
  /** For cmac(aes128) keys that are not 16 bytes: the RFC 5926 KDF output the kernel keeps. */
  readonly kernelKey?: Uint8Array;
  readonly maclen: number;
  readonly ifindex: number;
  readonly excludeOptions: boolean;
  readonly setCurrent: boolean;
  readonly setRnext: boolean;
}

export interface NativeKeyRef {
  readonly peer: string;
  readonly prefixLength: number;
  readonly sendId: number;
  readonly recvId: number;
  readonly ifindex: number;
  readonly newCurrent?: number;
  readonly newRnext?: number;
}

export interface NativeAoInfo extends AoInfo {
  readonly hasCurrent: boolean;
  readonly hasRnext: boolean;
}

export interface FieldLayout {
  readonly offset: number;
  readonly size: number;
}

export interface BitLayout {
  readonly byte: number;
  readonly mask: number;
}

export interface StructLayout {
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldLayout>>;
  readonly bits: Readonly<Record<string, BitLayout>>;
}

export interface NativeLayout {
  readonly tcp_ao_add: StructLayout;
  readonly tcp_ao_del: StructLayout;
  readonly tcp_ao_info_opt: StructLayout;
  readonly tcp_ao_getsockopt: StructLayout;
  readonly constants: Readonly<Record<string, number>>;
}

/** What hardenProcess() left in place, as the kernel reports it. */
export interface ProcessGuard {
  /** PR_GET_DUMPABLE: 0 once hardened. */
  readonly dumpable: number;
  readonly coreSoft: bigint;
  readonly coreHard: bigint;
}

/** What build/Release/tcpao.node exports (native/addon.cc). */
export interface NativeAddon {
  layout(): NativeLayout;
  /** errno of getsockopt(TCP_AO_INFO) on a fresh socket; 0 if it succeeded. */
  probe(): { readonly errno: number; readonly code: string };
  openSocket(family: 4 | 6): number;
  closeFd(fd: number): void;
  addKey(fd: number, key: NativeKey): void;
  deleteKey(fd: number, ref: NativeKeyRef): void;
  getKeys(fd: number): AoKeyInfo[];
  getInfo(fd: number): NativeAoInfo;
  setInfo(fd: number, update: AoInfoUpdate): void;
  setKeepalive(fd: number, keepalive: KeepaliveOptions): void;
  createListener(opts: {
    readonly host: string;
    readonly port: number;
    readonly backlog: number;
    readonly keys: readonly NativeKey[];
  }): number;
  connect(opts: {
    readonly host: string;
    readonly port: number;
    readonly localAddress?: string;
    readonly timeoutMs: number;
    readonly keys: readonly NativeKey[];
  }): Promise<number>;
  hardenProcess(): ProcessGuard;
  /** The variable's bytes (never a JS string), wiped from the environment; undefined when unset. */
  takeEnv(name: string): Uint8Array | undefined;
}

const ADDON_FUNCTIONS: readonly (keyof NativeAddon)[] = [
  'layout',
  'probe',
  'openSocket',
  'closeFd',
  'addKey',
  'deleteKey',
  'getKeys',
  'getInfo',
  'setKeepalive',
  'setInfo',
  'createListener',
  'connect',
  'hardenProcess',
  'takeEnv',
];

export const ADDON_PATH = path.resolve(__dirname, '..', '..', 'build', 'Release', 'tcpao.node');

function isNativeAddon(value: unknown): value is NativeAddon {
  if (typeof value !== 'object' || value === null) return false;
  return ADDON_FUNCTIONS.every((name) => typeof Reflect.get(value, name) === 'function');
}

/** Loads tcpao.node; ERR_TCPAO_ADDON_MISSING when it is absent or not ours. */
export function loadAddon(file: string = ADDON_PATH): NativeAddon {
  let loaded: unknown;
  try {
    loaded = require(file);
  } catch (err) {
    throw new TcpAoError(
      'ERR_TCPAO_ADDON_MISSING',
      `the native addon ${file} cannot be loaded: run npm install (needs python3, make, g++)`,
      { cause: err },
    );
  }
  if (!isNativeAddon(loaded)) {
    throw new TcpAoError(
      'ERR_TCPAO_ADDON_MISSING',
      `${file} does not export the TCP-AO functions: rebuild it with npm install (needs python3, make, g++)`,
    );
  }
  return loaded;
}

// ---------------------------------------------------------------------------
// Argument checks. Each throws ERR_TCPAO_INVALID_ARGUMENT naming the argument.

function invalid(what: string, message: string): TcpAoError {
  return new TcpAoError('ERR_TCPAO_INVALID_ARGUMENT', message, { detail: { argument: what } });
}

function isInteger(value: unknown, lo: number, hi: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= lo && value <= hi;
}

function checkInteger(value: unknown, what: string, lo: number, hi: number): number {
  if (!isInteger(value, lo, hi)) throw invalid(what, `${what} must be an integer from ${lo} to ${hi}`);
  return value;
}

function checkOptionalInteger(value: unknown, what: string, lo: number, hi: number, fallback: number): number {
  return value === undefined ? fallback : checkInteger(value, what, lo, hi);
}

function checkOptionalBoolean(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid(what, `${what} must be true or false`);
  return value;
}

function checkObject(value: unknown, what: string): object {
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

function checkPeerPrefix(
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

/**
 * A zeroed buffer for key bytes. Its memory is an ArrayBuffer of its own,
 * outside the JS heap: V8 keeps small typed arrays made by length
 * (Buffer.alloc(16), new Uint8Array(16)) inside the heap, where the garbage
 * collector copies them and leaves the old bytes behind, so zeroing the
 * array later would not remove every copy. Buffer.allocUnsafe would share
 * Node's pool with unrelated data.
 */
export function secureBytes(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

/** AES-CMAC (RFC 4493) with a 16-byte key; every intermediate block is zeroed, as the message may be a key. */
export function aesCmac(key: Uint8Array, message: Uint8Array): Buffer {
  const encrypt = (block: Uint8Array): Buffer => {
    const cipher = crypto.createCipheriv('aes-128-ecb', key, null);
    cipher.setAutoPadding(false);
    const head = cipher.update(block);
    const tail = cipher.final();
    const out = secureBytes(16);
    out.set(head);
    out.set(tail, head.length);
    head.fill(0);
    tail.fill(0);
    return out;
  };
  const double = (block: Uint8Array): Buffer => {
    const out = secureBytes(16);
    for (let i = 0; i < 16; i++) out[i] = (((block[i] ?? 0) << 1) | ((block[i + 1] ?? 0) >> 7)) & 0xff;
    if (((block[0] ?? 0) & 0x80) !== 0) out[15] = (out[15] ?? 0) ^ 0x87;
    return out;
  };
  const zeroBlock = secureBytes(16);
  const l = encrypt(zeroBlock);
  const k1 = double(l);
  const k2 = double(k1);
  l.fill(0);
  const blocks = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  const last = secureBytes(16);
  const lastStart = (blocks - 1) * 16;
  const lastPart = message.subarray(lastStart);
  last.set(lastPart);
  if (!complete) last[lastPart.length] = 0x80;
  const subkey = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) last[i] = (last[i] ?? 0) ^ (subkey[i] ?? 0);
  let state: Buffer = secureBytes(16);
  const mixed = secureBytes(16);
  for (let b = 0; b < blocks; b++) {
    const block = b === blocks - 1 ? last : message.subarray(b * 16, b * 16 + 16);
    for (let i = 0; i < 16; i++) mixed[i] = (state[i] ?? 0) ^ (block[i] ?? 0);
    const next = encrypt(mixed);
    state.fill(0);
    state = next;
  }
  mixed.fill(0);
  k1.fill(0);
  k2.fill(0);
  last.fill(0);
  return state;
}

/**
 * The key bytes the kernel keeps for an aes-128-cmac key that is not 16 bytes
 * long: KDF_AES_128_CMAC of RFC 5926 section 3.1.1.2, AES-CMAC under an
 * all-zero key (net/ipv4/tcp_ao.c, tcp_ao_parse_crypto()).
 */
export function cmacKdfKey(key: Uint8Array): Buffer {
  return aesCmac(new Uint8Array(16), key);
}

/** A key as checked here: the family for the socket check, and whether `key` is a revealed copy to zero. */
type CheckedKey = NativeKey & { readonly family: 4 | 6; readonly revealed: boolean };

function isKeyMaterial(value: unknown): value is KeyMaterial {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'reveal') === 'function';
}

function toNativeKey(value: unknown, what: string): CheckedKey {
  const spec = checkObject(value, what) as Partial<Record<keyof AoKeySpec, unknown>>;
  const { peer, prefixLength, family } = checkPeerPrefix(spec.peer, spec.prefixLength, what);
  const sendId = checkInteger(spec.sendId, `${what}.sendId`, 0, 255);
  const recvId = checkInteger(spec.recvId, `${what}.recvId`, 0, 255);
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
    ifindex: checkOptionalInteger(spec.ifindex, `${what}.ifindex`, 0, 2 ** 31 - 1, 0),
    excludeOptions: checkOptionalBoolean(spec.excludeOptions, `${what}.excludeOptions`),
    setCurrent: checkOptionalBoolean(spec.setCurrent, `${what}.setCurrent`),
    setRnext: checkOptionalBoolean(spec.setRnext, `${what}.setRnext`),
  };
  if (algorithm === 'aes-128-cmac' && key.length !== 16) return { ...base, kernelKey: cmacKdfKey(key) };
  return base;
}

function toNativeKeys(value: unknown, what: string, family: 4 | 6): CheckedKey[] {
  if (!Array.isArray(value)) throw invalid(what, `${what} must be an array of keys`);
  if (value.length === 0) {
    throw invalid(what, `${what} is empty: a TCP-AO socket needs at least one key (without keys it would be plain TCP)`);
  }
  if (value.length > 256) throw invalid(what, `${what} holds ${value.length} keys; at most 256 are allowed`);
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
function wipeCopies(keys: readonly CheckedKey[]): void {
  for (const key of keys) {
    key.kernelKey?.fill(0);
    if (key.revealed) key.key.fill(0);
  }
}

function checkFd(fd: unknown): number {
  if (!isInteger(fd, 0, 2 ** 31 - 1)) throw invalid('fd', 'fd must be a non-negative integer (an open socket)');
  return fd;
}

function checkPort(port: unknown, lo: number): number {
  return checkInteger(port, 'port', lo, 65535);
}

function endpoint(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---------------------------------------------------------------------------
// Native error translation.

interface NativeErrorShape {
  readonly message: string;
  readonly code: string | undefined;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly option: string | undefined;
  readonly argument: string | undefined;
  readonly fields: string | undefined;
  readonly keyIndex: number | undefined;
  readonly removeCode: string | undefined;
}

function readFlag(err: unknown, name: string): boolean | undefined {
  const v = typeof err === 'object' && err !== null ? Reflect.get(err, name) : undefined;
  return typeof v === 'boolean' ? v : undefined;
}

function readNativeError(err: unknown): NativeErrorShape {
  const get = (name: string): unknown =>
    typeof err === 'object' && err !== null ? Reflect.get(err, name) : undefined;
  const str = (name: string): string | undefined => {
    const v = get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const num = (name: string): number | undefined => {
    const v = get(name);
    return typeof v === 'number' ? v : undefined;
  };
  return {
    message: err instanceof Error ? err.message : String(err),
    code: str('code'),
    errno: num('errno'),
    syscall: str('syscall'),
    option: str('option'),
    argument: str('argument'),
    fields: str('fields'),
    keyIndex: num('keyIndex'),
    removeCode: str('removeCode'),
  };
}

/** Describes which key a native error refers to, without key bytes. */
function keyLabel(keys: readonly NativeKey[] | undefined, index: number | undefined): string {
  if (keys === undefined || index === undefined) return 'the key';
  const key = keys[index];
  if (key === undefined) return 'the key';
  return `key ${index} (peer ${key.peer}/${key.prefixLength}, sendId ${key.sendId}, recvId ${key.recvId})`;
}

/** The key an error names (the only one when none is named) and its index, when it is scoped to a VRF. */
function vrfScopedKey(keys: readonly NativeKey[] | undefined, named: number | undefined): { key: NativeKey; index: number } | undefined {
  const index = named ?? (keys?.length === 1 ? 0 : undefined);
  const key = index === undefined ? undefined : keys?.[index];
  return key !== undefined && index !== undefined && key.ifindex > 0 ? { key, index } : undefined;
}

/**
 * Turns an error thrown by the addon into a TcpAoError. @context says what
 * was attempted ("connectAo 10.0.0.1:179"); @keys lets messages name a key.
 */
export function fromNativeError(err: unknown, context: string, keys?: readonly NativeKey[]): TcpAoError {
  if (err instanceof TcpAoError) return err;
  const e = readNativeError(err);
  const syscall = e.syscall === undefined ? undefined : e.option === undefined ? e.syscall : `${e.syscall}(${e.option})`;
  const base = { cause: err, errno: e.errno, syscall, sysCode: e.code };
  const detail: Record<string, unknown> = {};
  if (e.keyIndex !== undefined) detail['keyIndex'] = e.keyIndex;

  if (e.code === 'ERR_TCPAO_INVALID_ARGUMENT' || e.argument === 'fd') {
    const what = e.argument ?? 'argument';
    const message = e.argument === 'fd' ? `fd is not an open TCP socket (${e.code ?? 'error'})` : e.message;
    return new TcpAoError('ERR_TCPAO_INVALID_ARGUMENT', `${context}: ${message}`, {
      ...base,
      detail: { ...detail, argument: what },
    });
  }
  if (e.code === 'ERR_TCPAO_KEY_READBACK') {
    const fields = (e.fields ?? '').split(',').filter((f) => f !== '');
    const kept = readFlag(err, 'keyRemoved') === false;
    const outcome = kept
      ? `the kernel refused to remove it (${e.removeCode ?? 'error'}: it is the current or RNext key, or the last one), ` +
        'so the connection was shut down'
      : 'the key was removed and the socket not used';
    return new TcpAoError(
      'ERR_TCPAO_KEY_READBACK',
      `${context}: the kernel's copy of ${keyLabel(keys, e.keyIndex)} differs from the key set ` +
        `(${e.fields ?? 'unknown fields'}); ${outcome}`,
      { cause: err, detail: { ...detail, fields, keyRemoved: !kept, ...(kept ? { shutDown: true } : {}) } },
    );
  }
  let code: ErrorCode = 'ERR_TCPAO_SYSCALL';
  let message = `${context}: ${e.message}`;
  const vrfKey = e.code === 'EINVAL' && e.option === 'TCP_AO_ADD_KEY' ? vrfScopedKey(keys, e.keyIndex) : undefined;
  if (e.code === 'ENOPROTOOPT') {
    code = 'ERR_TCPAO_UNSUPPORTED';
    message = `${context}: TCP-AO is not available: ${UNSUPPORTED_ADVICE} (${syscall ?? 'setsockopt'} returned ENOPROTOOPT)`;
  } else if (e.code === 'EAFNOSUPPORT' && e.option !== undefined && e.option.startsWith('TCP_AO_')) {
    code = 'ERR_TCPAO_INVALID_ARGUMENT';
    message = `${context}: ${keyLabel(keys, e.keyIndex)} is IPv6 but the socket is IPv4`;
    detail['argument'] = 'peer';
  } else if (e.code === 'EKEYREJECTED' && e.syscall === 'connect') {
    message =
      `${context}: the kernel refused to connect because no TCP-AO key covers the remote address (EKEYREJECTED); ` +
      'add a key whose peer and prefixLength include it';
  } else if (vrfKey !== undefined) {
    message =
      `${context}: ${keyLabel(keys, vrfKey.index)} names ifindex ${vrfKey.key.ifindex}, which is not a VRF ` +
      '(L3 master device) in this network namespace (EINVAL); set vrf_ifindex to the ifindex of a VRF, or 0 for the default VRF';
    detail['argument'] = 'ifindex';
  } else if (e.code === 'EEXIST' && e.option === 'TCP_AO_ADD_KEY') {
    message =
      `${context}: ${keyLabel(keys, e.keyIndex)} overlaps a key already on the socket (EEXIST): ` +
      'sendId and recvId must be unique among keys whose peers overlap';
  }
  return new TcpAoError(code, message, { ...base, detail });
}

// ---------------------------------------------------------------------------
// The binding.

/** Builds a TcpAoBinding over an addon; @load runs on first use. */
export function createBinding(load: () => NativeAddon): TcpAoBinding {
  let addon: NativeAddon | undefined;
  const native = (): NativeAddon => {
    addon ??= load();
    return addon;
  };

  const call = <T>(context: string, fn: (a: NativeAddon) => T, keys?: readonly NativeKey[]): T => {
    const a = native();
    try {
      return fn(a);
    } catch (err) {
      throw fromNativeError(err, context, keys);
    }
  };

  return {
    probeTcpAo(): ProbeResult {
      const result = call('probeTcpAo', (a) => a.probe());
      if (result.errno === 2 || result.errno === 0) return { supported: true };
      if (result.code === 'ENOPROTOOPT') {
        return { supported: false, errno: result.errno, code: result.code, reason: UNSUPPORTED_REASON };
      }
      return {
        supported: false,
        errno: result.errno,
        code: result.code,
        reason: `getsockopt(TCP_AO_INFO) on a fresh socket failed with ${result.code} (errno ${result.errno})`,
      };
    },

    createAoListener(opts: AoListenOptions): number {
      const o = checkObject(opts, 'options') as Partial<Record<keyof AoListenOptions, unknown>>;
      const family = checkAddress(o.host, 'host');
      const host = o.host as string;
      const port = checkPort(o.port, 0);
      const backlog = checkOptionalInteger(o.backlog, 'backlog', 1, 65535, 511);
      const keys = toNativeKeys(o.keys, 'keys', family);
      try {
        return call(`createAoListener ${endpoint(host, port)}`, (a) => a.createListener({ host, port, backlog, keys }), keys);
      } finally {
        wipeCopies(keys);
      }
    },

    async connectAo(opts: AoConnectOptions): Promise<number> {
      const o = checkObject(opts, 'options') as Partial<Record<keyof AoConnectOptions, unknown>>;
      const family = checkAddress(o.host, 'host');
      const host = o.host as string;
      const port = checkPort(o.port, 1);
      const timeoutMs = checkInteger(o.timeoutMs, 'timeoutMs', 1, 2 ** 31 - 1);
      let localAddress: string | undefined;
      if (o.localAddress !== undefined) {
        if (checkAddress(o.localAddress, 'localAddress') !== family) {
          throw invalid('localAddress', `localAddress must be IPv${family} like host`);
        }
        localAddress = o.localAddress as string;
      }
      const keys = toNativeKeys(o.keys, 'keys', family);
      const context = `connectAo ${endpoint(host, port)}`;
      try {
        const pending = call(context, (a) =>
          a.connect(localAddress === undefined ? { host, port, timeoutMs, keys } : { host, port, localAddress, timeoutMs, keys }),
        keys);
        return await pending;
      } catch (err) {
        const mapped = fromNativeError(err, context, keys);
        if (mapped.sysCode === 'ETIMEDOUT' && mapped.syscall === 'connect') {
          throw new TcpAoError(
            'ERR_TCPAO_CONNECT_TIMEOUT',
            `${context}: no answer within ${timeoutMs} ms. With TCP-AO a wrong key or key id (or a peer without ` +
              'TCP-AO) shows up as a timeout because the peer drops the SYN silently: compare keys, sendId/recvId and ' +
              "algorithm on both ends and look at the peer's AO counters (pkt_bad, pkt_key_not_found, pkt_ao_required; " +
              'nstat TcpExtTCPAOBad TcpExtTCPAOKeyNotFound TcpExtTCPAORequired)',
            { cause: err, errno: mapped.errno, syscall: 'connect', sysCode: 'ETIMEDOUT', detail: { timeoutMs } },
          );
        }
        throw mapped;
      } finally {
        wipeCopies(keys);
      }
    },

    addKey(fd: number, key: AoKeySpec): void {
      const checkedFd = checkFd(fd);
      const nativeKey = toNativeKey(key, 'key');
      try {
        call(`addKey fd ${checkedFd}`, (a) => a.addKey(checkedFd, nativeKey), [nativeKey]);
      } finally {
        wipeCopies([nativeKey]);
      }
    },

    deleteKey(fd: number, ref: AoKeyRef): void {
      const checkedFd = checkFd(fd);
      const r = checkObject(ref, 'ref') as Partial<Record<keyof AoKeyRef, unknown>>;
      const { peer, prefixLength } = checkPeerPrefix(r.peer, r.prefixLength, 'ref');
      const nativeRef: NativeKeyRef = {
        peer,
        prefixLength,
        sendId: checkInteger(r.sendId, 'ref.sendId', 0, 255),
        recvId: checkInteger(r.recvId, 'ref.recvId', 0, 255),
        ifindex: checkOptionalInteger(r.ifindex, 'ref.ifindex', 0, 2 ** 31 - 1, 0),
        ...(r.newCurrent === undefined ? {} : { newCurrent: checkInteger(r.newCurrent, 'ref.newCurrent', 0, 255) }),
        ...(r.newRnext === undefined ? {} : { newRnext: checkInteger(r.newRnext, 'ref.newRnext', 0, 255) }),
      };
      call(`deleteKey fd ${checkedFd}`, (a) => a.deleteKey(checkedFd, nativeRef));
    },

    getKeys(fd: number): AoKeyInfo[] {
      const checkedFd = checkFd(fd);
      return call(`getKeys fd ${checkedFd}`, (a) => a.getKeys(checkedFd)).map((k) => ({
        peer: k.peer,
        prefixLength: k.prefixLength,
        sendId: k.sendId,
        recvId: k.recvId,
        kernelAlgorithm: k.kernelAlgorithm,
        maclen: k.maclen,
        keyflags: k.keyflags,
        keylen: k.keylen,
        ifindex: k.ifindex,
        isCurrent: k.isCurrent,
        isRnext: k.isRnext,
        pktGood: k.pktGood,
        pktBad: k.pktBad,
      }));
    },

    getAoInfo(fd: number): AoInfo {
      const checkedFd = checkFd(fd);
      const info = call(`getAoInfo fd ${checkedFd}`, (a) => a.getInfo(checkedFd));
      return {
        aoRequired: info.aoRequired,
        acceptIcmps: info.acceptIcmps,
        currentKey: info.currentKey,
        rnextKey: info.rnextKey,
        pktGood: info.pktGood,
        pktBad: info.pktBad,
        pktKeyNotFound: info.pktKeyNotFound,
        pktAoRequired: info.pktAoRequired,
        pktDroppedIcmp: info.pktDroppedIcmp,
      };
    },

    setAoInfo(fd: number, update: AoInfoUpdate): void {
      const checkedFd = checkFd(fd);
      const u = checkObject(update, 'update') as Partial<Record<keyof AoInfoUpdate, unknown>>;
      const checked: { -readonly [K in keyof AoInfoUpdate]: AoInfoUpdate[K] } = {};
      if (u.currentKey !== undefined) checked.currentKey = checkInteger(u.currentKey, 'update.currentKey', 0, 255);
      if (u.rnextKey !== undefined) checked.rnextKey = checkInteger(u.rnextKey, 'update.rnextKey', 0, 255);
      if (u.aoRequired !== undefined) checked.aoRequired = checkOptionalBoolean(u.aoRequired, 'update.aoRequired');
      if (u.acceptIcmps !== undefined) checked.acceptIcmps = checkOptionalBoolean(u.acceptIcmps, 'update.acceptIcmps');
      call(`setAoInfo fd ${checkedFd}`, (a) => a.setInfo(checkedFd, checked));
    },

    setKeepalive(fd: number, keepalive: KeepaliveOptions): void {
      const checkedFd = checkFd(fd);
      const k = checkObject(keepalive, 'keepalive') as Partial<Record<keyof KeepaliveOptions, unknown>>;
      // Linux caps TCP_KEEPIDLE and TCP_KEEPINTVL at 32767 s and TCP_KEEPCNT at 127.
      const checked: KeepaliveOptions = {
        idleSecs: checkInteger(k.idleSecs, 'keepalive.idleSecs', 1, 32_767),
        intervalSecs: checkInteger(k.intervalSecs, 'keepalive.intervalSecs', 1, 32_767),
        probes: checkInteger(k.probes, 'keepalive.probes', 1, 127),
      };
      call(`setKeepalive fd ${checkedFd}`, (a) => a.setKeepalive(checkedFd, checked));
    },

    openScratchSocket(family: 4 | 6): number {
      if (family !== 4 && family !== 6) throw invalid('family', 'family must be 4 or 6');
      return call('openScratchSocket', (a) => a.openSocket(family));
    },

    closeFd(fd: number): void {
      const checkedFd = checkFd(fd);
      call(`closeFd ${checkedFd}`, (a) => a.closeFd(checkedFd));
    },

    socketFd,
  };
}

/**
 * The fd under a Node socket (accepted or connected), read from its libuv
 * handle. Throws ERR_TCPAO_INVALID_ARGUMENT when the socket has no fd
 * (not yet connected, already destroyed, or not fd-backed).
 */
export function socketFd(sock: net.Socket): number {
  const handle: unknown = Reflect.get(sock, '_handle');
  const fd: unknown = typeof handle === 'object' && handle !== null ? Reflect.get(handle, 'fd') : undefined;
  if (!isInteger(fd, 0, 2 ** 31 - 1)) {
    throw invalid('socket', 'the socket has no file descriptor (not connected yet, or already closed)');
  }
  return fd;
}

let sharedBinding: TcpAoBinding | undefined;

/** The binding over build/Release/tcpao.node, loaded on first use. */
export function defaultBinding(): TcpAoBinding {
  sharedBinding ??= createBinding(() => loadAddon());
  return sharedBinding;
}

export function probeTcpAo(): ProbeResult {
  return defaultBinding().probeTcpAo();
}

export function createAoListener(opts: AoListenOptions): number {
  return defaultBinding().createAoListener(opts);
}

export function connectAo(opts: AoConnectOptions): Promise<number> {
  return defaultBinding().connectAo(opts);
}

export function addKey(fd: number, key: AoKeySpec): void {
  defaultBinding().addKey(fd, key);
}

export function deleteKey(fd: number, ref: AoKeyRef): void {
  defaultBinding().deleteKey(fd, ref);
}

export function getKeys(fd: number): AoKeyInfo[] {
  return defaultBinding().getKeys(fd);
}

export function getAoInfo(fd: number): AoInfo {
  return defaultBinding().getAoInfo(fd);
}

export function setAoInfo(fd: number, update: AoInfoUpdate): void {
  defaultBinding().setAoInfo(fd, update);
}

export function openScratchSocket(family: 4 | 6): number {
  return defaultBinding().openScratchSocket(family);
}

export function closeFd(fd: number): void {
  defaultBinding().closeFd(fd);
}

/**
 * Makes the process non-dumpable and sets RLIMIT_CORE to 0, so neither a
 * core file nor another process of the same uid (/proc/PID/environ, mem,
 * ptrace) can read key bytes. Call before any key is read.
 */
export function hardenProcess(addon: NativeAddon = loadAddon()): ProcessGuard {
  try {
    return addon.hardenProcess();
  } catch (err) {
    throw fromNativeError(err, 'hardenProcess');
  }
}

/**
 * Moves an environment variable's value into an off-heap buffer the caller
 * owns (and must zero), without ever making it a JS string; the variable is
 * gone from the environment afterwards. undefined when it is not set.
 */
export function takeEnvBytes(name: string, addon: NativeAddon = loadAddon()): Uint8Array | undefined {
  try {
    return addon.takeEnv(name);
  } catch (err) {
    throw fromNativeError(err, `takeEnv ${name}`);
  }
}

/** Struct layouts as compiled into the addon (for the layout test). */
export function nativeLayout(): NativeLayout {
  return loadAddon().layout();
}
