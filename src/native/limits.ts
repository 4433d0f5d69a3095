/**
 * Every limit the native boundary enforces, stated once: the config schema
 * and the argument checks import these, and native/tcp_ao_limits.h states
 * the same figures for the addon (test/unit/native-limits.test.ts compares
 * the two through the addon's layout().limits).
 */

/** Longest key the kernel takes (TCP_AO_MAXKEYLEN in include/uapi/linux/tcp.h). */
export const TCP_AO_MAXKEYLEN = 80;
/** RFC 5925 default MAC length, also the kernel's when maclen is 0. */
export const DEFAULT_MACLEN = 12;
/** Largest MAC that leaves room for MSS, timestamps and window scale in a SYN (net/ipv4/tcp_ao.c). */
export const MAX_MACLEN = 16;
/** Shorter MACs are allowed by the kernel but too weak to offer (config only; the addon takes 0 for the default). */
export const MIN_MACLEN = 4;
/**
 * Most TCP-AO keys the sidecar installs on one socket: the addon refuses more
 * in one call, and the terminator's listener takes every policy's keys in one call.
 */
export const MAX_KEYS_PER_SOCKET = 256;
/** SendID and RecvID are one byte on the wire (RFC 5925 section 2.2). */
export const MAX_KEY_ID = 255;
/** Linux caps TCP_KEEPIDLE and TCP_KEEPINTVL at 32767 s (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL). */
export const MAX_KEEPALIVE_SECS = 32_767;
/** Linux caps TCP_KEEPCNT at 127 (MAX_TCP_KEEPCNT). */
export const MAX_KEEPALIVE_PROBES = 127;
/** An ifindex is a positive C int; 0 means any (the default VRF). */
export const MAX_IFINDEX = 2_147_483_647;
export const MAX_PORT = 65_535;
/** The kernel clamps a larger backlog to net.core.somaxconn anyway. */
export const MAX_BACKLOG = 65_535;
/** Bytes Node read ahead on one leg that the native relay takes over at hand-off (one relay buffer). */
export const RELAY_EARLY_MAX_BYTES = 64 * 1024;

/** The limits the addon exports in layout().limits, under the names it uses. */
export const NATIVE_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  maxKeyLen: TCP_AO_MAXKEYLEN,
  defaultMaclen: DEFAULT_MACLEN,
  maxMaclen: MAX_MACLEN,
  maxKeysPerCall: MAX_KEYS_PER_SOCKET,
  maxKeyId: MAX_KEY_ID,
  maxKeepaliveSecs: MAX_KEEPALIVE_SECS,
  maxKeepaliveProbes: MAX_KEEPALIVE_PROBES,
  maxIfindex: MAX_IFINDEX,
  maxPort: MAX_PORT,
  maxBacklog: MAX_BACKLOG,
  relayEarlyMaxBytes: RELAY_EARLY_MAX_BYTES,
});
