/**
 * The typed boundary to the C++ addon. This is the only module that loads
 * build/Release/tcpao.node; everything else imports these types and functions.
 */

export type MacAlgorithm = 'hmac-sha1' | 'hmac-sha256' | 'aes-128-cmac';

/** One master key tuple to install on a socket. `key` is never logged. */
export interface AoKeySpec {
  /** Peer address (IPv4 or IPv6 literal) the key applies to. */
  readonly peer: string;
  /** Prefix length; default 32 for IPv4, 128 for IPv6. */
  readonly prefixLength?: number;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: MacAlgorithm;
  /** 1 to 80 bytes. */
  readonly key: Uint8Array;
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
