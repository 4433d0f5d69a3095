// Every limit the addon enforces, stated once. src/native/limits.ts states
// the same figures for the TypeScript side; the addon exports these through
// layout().limits and test/unit/native-limits.test.ts compares the two.
#ifndef NATIVE_TCP_AO_LIMITS_H_
#define NATIVE_TCP_AO_LIMITS_H_

#include <stddef.h>

namespace tcpao {

// TCP_AO_MAXKEYLEN of include/uapi/linux/tcp.h (tcp_ao.cc asserts it).
constexpr size_t kMaxKeyLen = 80;
// RFC 5925 default, and what the kernel uses when maclen is 0.
constexpr int kDefaultMaclen = 12;
// Largest MAC that leaves room for MSS, timestamps and window scale in a SYN.
constexpr int kMaxMaclen = 16;
// Keys one createListener/connect call installs.
constexpr size_t kMaxKeysPerCall = 256;
// SendID and RecvID are one byte on the wire (RFC 5925 section 2.2).
constexpr int kMaxKeyId = 255;
// MAX_TCP_KEEPIDLE and MAX_TCP_KEEPINTVL (include/net/tcp.h).
constexpr int kMaxKeepaliveSecs = 32767;
// MAX_TCP_KEEPCNT (include/net/tcp.h).
constexpr int kMaxKeepaliveProbes = 127;
// An ifindex is a positive C int; 0 means any (the default VRF).
constexpr int kMaxIfindex = 2147483647;
constexpr int kMaxPort = 65535;
constexpr int kMaxBacklog = 65535;
// Bytes Node had read ahead on one leg that the native relay takes over at
// hand-off: one relay buffer's worth per direction.
constexpr size_t kRelayEarlyMaxBytes = size_t{64} * 1024;

}  // namespace tcpao

#endif  // NATIVE_TCP_AO_LIMITS_H_
