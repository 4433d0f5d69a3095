// Copy of the Linux 6.12 TCP-AO UAPI (include/uapi/linux/tcp.h).
//
// Debian 12 ships linux-libc-dev 6.1, which has no TCP-AO definitions, so the
// addon carries its own. Constants are guarded with #ifndef so a newer system
// header wins if it agrees; the static_asserts in tcp_ao.cc check that it does.
// The structs carry an _ext suffix so they never clash with a future
// <linux/tcp.h>. Their layouts (x86_64: 288/144/48/304 bytes) are asserted in
// tcp_ao.cc and exported through layout() for test/unit/layout.test.ts.
#ifndef NATIVE_UAPI_TCP_AO_H_
#define NATIVE_UAPI_TCP_AO_H_

#include <stdint.h>
#include <sys/socket.h>

#ifndef TCP_AO_ADD_KEY
#define TCP_AO_ADD_KEY 38  // add a Master Key Tuple
#endif
#ifndef TCP_AO_DEL_KEY
#define TCP_AO_DEL_KEY 39  // delete a Master Key Tuple
#endif
#ifndef TCP_AO_INFO
#define TCP_AO_INFO 40  // get/set TCP-AO state of the socket
#endif
#ifndef TCP_AO_GET_KEYS
#define TCP_AO_GET_KEYS 41  // list Master Key Tuples
#endif
#ifndef TCP_AO_MAXKEYLEN
#define TCP_AO_MAXKEYLEN 80
#endif
#ifndef TCP_AO_KEYF_IFINDEX
#define TCP_AO_KEYF_IFINDEX (1 << 0)  // L3 ifindex for VRF
#endif
#ifndef TCP_AO_KEYF_EXCLUDE_OPT
#define TCP_AO_KEYF_EXCLUDE_OPT (1 << 1)  // exclude TCP options other than AO from the MAC
#endif

// sockaddr_storage has the size (128) and alignment (8) of the kernel's
// __kernel_sockaddr_storage; asserted in tcp_ao.cc.

// setsockopt(TCP_AO_ADD_KEY)
struct tcp_ao_add_ext {
  struct sockaddr_storage addr;  // peer address, port 0
  char alg_name[64];             // crypto API name, NUL-terminated
  int32_t ifindex;               // L3 master device for VRF, with TCP_AO_KEYF_IFINDEX
  uint32_t set_current : 1,      // make it Current_key at once
      set_rnext : 1,             // request it from the peer as RNext_key
      reserved : 30;             // must be 0
  uint16_t reserved2;            // must be 0
  uint8_t prefix;                // peer address prefix length
  uint8_t sndid;                 // SendID for outgoing segments
  uint8_t rcvid;                 // RecvID to match on incoming segments
  uint8_t maclen;                // MAC length; 0 means 12
  uint8_t keyflags;              // TCP_AO_KEYF_*
  uint8_t keylen;                // bytes used in key[]
  uint8_t key[TCP_AO_MAXKEYLEN];
} __attribute__((aligned(8)));

// setsockopt(TCP_AO_DEL_KEY)
struct tcp_ao_del_ext {
  struct sockaddr_storage addr;
  int32_t ifindex;
  uint32_t set_current : 1,  // move Current_key to current_key while deleting
      set_rnext : 1,         // move RNext_key to rnext while deleting
      del_async : 1,         // listening sockets only
      reserved : 29;         // must be 0
  uint16_t reserved2;        // must be 0
  uint8_t prefix;
  uint8_t sndid;
  uint8_t rcvid;
  uint8_t current_key;
  uint8_t rnext;
  uint8_t keyflags;
} __attribute__((aligned(8)));

// setsockopt(TCP_AO_INFO) and getsockopt(TCP_AO_INFO)
struct tcp_ao_info_opt_ext {
  uint32_t set_current : 1,  // in/out: current_key is valid
      set_rnext : 1,         // in/out: rnext is valid
      ao_required : 1,       // in/out: refuse segments without TCP-AO
      set_counters : 1,      // in: overwrite the pkt_* counters
      accept_icmps : 1,      // in/out: accept ICMP hard errors
      reserved : 27;         // must be 0 (checked on get as well as set)
  uint16_t reserved2;        // must be 0 (checked on get as well as set)
  uint8_t current_key;       // SendID of Current_key
  uint8_t rnext;             // RecvID of RNext_key
  uint64_t pkt_good;
  uint64_t pkt_bad;
  uint64_t pkt_key_not_found;
  uint64_t pkt_ao_required;
  uint64_t pkt_dropped_icmp;
} __attribute__((aligned(8)));

// getsockopt(TCP_AO_GET_KEYS): an array of these; element 0 is the filter and
// nkeys in it is the array length on input, the number of matches on output.
struct tcp_ao_getsockopt_ext {
  struct sockaddr_storage addr;   // in/out
  char alg_name[64];              // out
  uint8_t key[TCP_AO_MAXKEYLEN];  // out
  uint32_t nkeys;                 // in: array length; out: keys matched
  uint16_t is_current : 1,        // in: match Current_key; out: key is current
      is_rnext : 1,               // in: match RNext_key; out: key is rnext
      get_all : 1,                // in: dump every key
      reserved : 13;              // must be 0
  uint8_t sndid;
  uint8_t rcvid;
  uint8_t prefix;
  uint8_t maclen;     // out
  uint8_t keyflags;   // in/out
  uint8_t keylen;     // out
  int32_t ifindex;    // in/out
  uint64_t pkt_good;  // out
  uint64_t pkt_bad;   // out
} __attribute__((aligned(8)));

#endif  // NATIVE_UAPI_TCP_AO_H_
