// The types of the native boundary: what callers hand the binding, what the
// addon takes and returns, and the kernel names both sides share.
import type * as net from 'node:net';

export type MacAlgorithm = 'hmac-sha1' | 'hmac-sha256' | 'aes-128-cmac';

/**
 * Key bytes held by an owner that zeroes them (SecretKey): reveal() returns a
 * fresh copy, which args.ts zeroes as soon as the addon has copied it.
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

export const TCP_AO_KEYF_IFINDEX = 1;
export const TCP_AO_KEYF_EXCLUDE_OPT = 2;

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
  /** native/tcp_ao_limits.h, under the names of NATIVE_LIMITS. */
  readonly limits: Readonly<Record<string, number>>;
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

/** How the native relay loop says a connection ended (native/relay.h RelayEndKind). */
export type NativeRelayEndKind = 'closed' | 'idle_timeout' | 'client_error' | 'upstream_error' | 'aborted';

export interface NativeRelayStats {
  readonly connections: number;
  readonly buffers: number;
  readonly pipes: number;
}

/** The native relay's exports of tcpao.node (native/relay_bindings.h). */
export interface NativeRelayAddon {
  /** Once per process: the function every ended connection is reported to, on the JS thread. */
  relayInit(
    onEnd: (id: number, kind: NativeRelayEndKind, clientToUpstream: number, upstreamToClient: number, error?: Error) => void,
    options: { readonly splice: boolean },
  ): void;
  /**
   * Duplicates both fds (F_DUPFD_CLOEXEC) and relays the copies. @clientEarly and
   * @upstreamEarly are bytes already read from that leg (at most
   * RELAY_EARLY_MAX_BYTES each), written to the other leg first.
   */
  relayAdd(
    clientFd: number,
    upstreamFd: number,
    idleMs: number,
    clientEarly?: Uint8Array,
    upstreamEarly?: Uint8Array,
  ): { readonly id: number; readonly clientFd: number; readonly upstreamFd: number };
  relayAbort(id: number): void;
  /** What the relay holds across the process: connections not yet ended, buffers allocated, splice pipes open. */
  relayStats(): NativeRelayStats;
  relayBytes(id: number): [number, number];
  /** Closes both fds of an ended relay; SO_LINGER 0 first when the loop or @reset asks for a reset. */
  relayRelease(id: number, reset: boolean): void;
}
