// TCP-AO socket helpers: 0 or -errno, no Napi types (see tcp_ao.h).
#include "tcp_ao.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "uapi_tcp_ao.h"

// The kernel copies these structs byte for byte, so any drift from the 6.12
// UAPI would corrupt every call. Offsets below are the ones test/layout.c
// printed against include/uapi/linux/tcp.h (shared/research/kernel-lab.md).
static_assert(TCP_AO_ADD_KEY == 38 && TCP_AO_DEL_KEY == 39 && TCP_AO_INFO == 40 && TCP_AO_GET_KEYS == 41,
              "TCP-AO socket option numbers differ from the 6.12 UAPI");
static_assert(TCP_AO_MAXKEYLEN == 80, "TCP_AO_MAXKEYLEN differs from the 6.12 UAPI");
static_assert(TCP_AO_KEYF_IFINDEX == 1 && TCP_AO_KEYF_EXCLUDE_OPT == 2, "TCP_AO_KEYF_* differ from the 6.12 UAPI");
static_assert(sizeof(struct sockaddr_storage) == 128 && alignof(struct sockaddr_storage) == 8,
              "sockaddr_storage must match __kernel_sockaddr_storage");

static_assert(sizeof(tcp_ao_add_ext) == 288, "struct tcp_ao_add is 288 bytes");
static_assert(offsetof(tcp_ao_add_ext, addr) == 0, "tcp_ao_add.addr");
static_assert(offsetof(tcp_ao_add_ext, alg_name) == 128, "tcp_ao_add.alg_name");
static_assert(offsetof(tcp_ao_add_ext, ifindex) == 192, "tcp_ao_add.ifindex");
static_assert(offsetof(tcp_ao_add_ext, reserved2) == 200, "tcp_ao_add.reserved2");
static_assert(offsetof(tcp_ao_add_ext, prefix) == 202, "tcp_ao_add.prefix");
static_assert(offsetof(tcp_ao_add_ext, sndid) == 203, "tcp_ao_add.sndid");
static_assert(offsetof(tcp_ao_add_ext, rcvid) == 204, "tcp_ao_add.rcvid");
static_assert(offsetof(tcp_ao_add_ext, maclen) == 205, "tcp_ao_add.maclen");
static_assert(offsetof(tcp_ao_add_ext, keyflags) == 206, "tcp_ao_add.keyflags");
static_assert(offsetof(tcp_ao_add_ext, keylen) == 207, "tcp_ao_add.keylen");
static_assert(offsetof(tcp_ao_add_ext, key) == 208, "tcp_ao_add.key");

static_assert(sizeof(tcp_ao_del_ext) == 144, "struct tcp_ao_del is 144 bytes");
static_assert(offsetof(tcp_ao_del_ext, ifindex) == 128, "tcp_ao_del.ifindex");
static_assert(offsetof(tcp_ao_del_ext, reserved2) == 136, "tcp_ao_del.reserved2");
static_assert(offsetof(tcp_ao_del_ext, prefix) == 138, "tcp_ao_del.prefix");
static_assert(offsetof(tcp_ao_del_ext, sndid) == 139, "tcp_ao_del.sndid");
static_assert(offsetof(tcp_ao_del_ext, rcvid) == 140, "tcp_ao_del.rcvid");
static_assert(offsetof(tcp_ao_del_ext, current_key) == 141, "tcp_ao_del.current_key");
static_assert(offsetof(tcp_ao_del_ext, rnext) == 142, "tcp_ao_del.rnext");
static_assert(offsetof(tcp_ao_del_ext, keyflags) == 143, "tcp_ao_del.keyflags");

static_assert(sizeof(tcp_ao_info_opt_ext) == 48, "struct tcp_ao_info_opt is 48 bytes");
static_assert(offsetof(tcp_ao_info_opt_ext, reserved2) == 4, "tcp_ao_info_opt.reserved2");
static_assert(offsetof(tcp_ao_info_opt_ext, current_key) == 6, "tcp_ao_info_opt.current_key");
static_assert(offsetof(tcp_ao_info_opt_ext, rnext) == 7, "tcp_ao_info_opt.rnext");
static_assert(offsetof(tcp_ao_info_opt_ext, pkt_good) == 8, "tcp_ao_info_opt.pkt_good");
static_assert(offsetof(tcp_ao_info_opt_ext, pkt_bad) == 16, "tcp_ao_info_opt.pkt_bad");
static_assert(offsetof(tcp_ao_info_opt_ext, pkt_key_not_found) == 24, "tcp_ao_info_opt.pkt_key_not_found");
static_assert(offsetof(tcp_ao_info_opt_ext, pkt_ao_required) == 32, "tcp_ao_info_opt.pkt_ao_required");
static_assert(offsetof(tcp_ao_info_opt_ext, pkt_dropped_icmp) == 40, "tcp_ao_info_opt.pkt_dropped_icmp");

static_assert(sizeof(tcp_ao_getsockopt_ext) == 304, "struct tcp_ao_getsockopt is 304 bytes");
static_assert(offsetof(tcp_ao_getsockopt_ext, alg_name) == 128, "tcp_ao_getsockopt.alg_name");
static_assert(offsetof(tcp_ao_getsockopt_ext, key) == 192, "tcp_ao_getsockopt.key");
static_assert(offsetof(tcp_ao_getsockopt_ext, nkeys) == 272, "tcp_ao_getsockopt.nkeys");
static_assert(offsetof(tcp_ao_getsockopt_ext, sndid) == 278, "tcp_ao_getsockopt.sndid");
static_assert(offsetof(tcp_ao_getsockopt_ext, rcvid) == 279, "tcp_ao_getsockopt.rcvid");
static_assert(offsetof(tcp_ao_getsockopt_ext, prefix) == 280, "tcp_ao_getsockopt.prefix");
static_assert(offsetof(tcp_ao_getsockopt_ext, maclen) == 281, "tcp_ao_getsockopt.maclen");
static_assert(offsetof(tcp_ao_getsockopt_ext, keyflags) == 282, "tcp_ao_getsockopt.keyflags");
static_assert(offsetof(tcp_ao_getsockopt_ext, keylen) == 283, "tcp_ao_getsockopt.keylen");
static_assert(offsetof(tcp_ao_getsockopt_ext, ifindex) == 284, "tcp_ao_getsockopt.ifindex");
static_assert(offsetof(tcp_ao_getsockopt_ext, pkt_good) == 288, "tcp_ao_getsockopt.pkt_good");
static_assert(offsetof(tcp_ao_getsockopt_ext, pkt_bad) == 296, "tcp_ao_getsockopt.pkt_bad");

namespace tcpao {
namespace {

// A TCP_AO_GET_KEYS result array; it holds key bytes, so it is wiped on destruction.
class KeyDump {
 public:
  explicit KeyDump(size_t n) : n_(n), entries_(new tcp_ao_getsockopt_ext[n]()) {}
  KeyDump(const KeyDump&) = delete;
  KeyDump& operator=(const KeyDump&) = delete;
  ~KeyDump() { wipe(entries_.get(), n_ * sizeof(tcp_ao_getsockopt_ext)); }

  tcp_ao_getsockopt_ext* data() { return entries_.get(); }
  size_t size() const { return n_; }

 private:
  size_t n_;
  std::unique_ptr<tcp_ao_getsockopt_ext[]> entries_;
};

// Upper bound on keys read back from one socket; far above any sane key set.
constexpr size_t kMaxDumpKeys = 4096;

int record(Failure* f, const char* syscall, const char* option) {
  int err = errno;
  f->syscall = syscall;
  f->option = option;
  return -err;
}

int record_err(Failure* f, int err, const char* syscall, const char* option) {
  f->syscall = syscall;
  f->option = option;
  return -err;
}

// Fills a sockaddr for a TCP-AO key: port 0 (the kernel rejects any other),
// and an IPv4 peer on an AF_INET6 socket as ::ffff:a.b.c.d, which the kernel
// turns back into an AF_INET key (tcp_ao_verify_ipv6()).
void key_sockaddr(const Peer& peer, int socket_family, struct sockaddr_storage* ss) {
  memset(ss, 0, sizeof(*ss));
  if (peer.family == AF_INET && socket_family == AF_INET) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, peer.addr, 4);
  } else {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(ss);
    sin6->sin6_family = AF_INET6;
    if (peer.family == AF_INET) {
      sin6->sin6_addr.s6_addr[10] = 0xff;
      sin6->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&sin6->sin6_addr.s6_addr[12], peer.addr, 4);
    } else {
      memcpy(&sin6->sin6_addr, peer.addr, 16);
    }
  }
}

socklen_t endpoint_sockaddr(const Peer& peer, uint16_t port, struct sockaddr_storage* ss) {
  memset(ss, 0, sizeof(*ss));
  if (peer.family == AF_INET) {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, peer.addr, 4);
    return sizeof(*sin);
  }
  auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  memcpy(&sin6->sin6_addr, peer.addr, 16);
  return sizeof(*sin6);
}

// The address a key is stored under, as TCP_AO_GET_KEYS reports it.
bool same_key_address(const tcp_ao_getsockopt_ext& e, const Peer& peer) {
  if (e.addr.ss_family != peer.family || e.prefix != peer.prefix) return false;
  if (peer.family == AF_INET) {
    const auto* sin = reinterpret_cast<const struct sockaddr_in*>(&e.addr);
    return memcmp(&sin->sin_addr, peer.addr, 4) == 0;
  }
  const auto* sin6 = reinterpret_cast<const struct sockaddr_in6*>(&e.addr);
  return memcmp(&sin6->sin6_addr, peer.addr, 16) == 0;
}

Peer peer_of(const tcp_ao_getsockopt_ext& e) {
  Peer p;
  p.family = e.addr.ss_family;
  p.prefix = e.prefix;
  if (p.family == AF_INET) {
    memcpy(p.addr, &reinterpret_cast<const struct sockaddr_in*>(&e.addr)->sin_addr, 4);
  } else if (p.family == AF_INET6) {
    memcpy(p.addr, &reinterpret_cast<const struct sockaddr_in6*>(&e.addr)->sin6_addr, 16);
  }
  return p;
}

// Compares without an early exit, so timing does not reveal where keys differ.
bool same_bytes(const uint8_t* a, const uint8_t* b, size_t n) {
  uint8_t diff = 0;
  for (size_t i = 0; i < n; i++) diff |= static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

uint8_t key_flags(int32_t ifindex, bool exclude_options) {
  int flags = (ifindex > 0 ? TCP_AO_KEYF_IFINDEX : 0) | (exclude_options ? TCP_AO_KEYF_EXCLUDE_OPT : 0);
  return static_cast<uint8_t>(flags);
}

/**
 * dump_keys() - read MKTs with getsockopt(TCP_AO_GET_KEYS)
 * @fd: TCP socket
 * @filter: element 0 of the request (nkeys is filled in here)
 * @out: receives the array; resized until every match fits
 * @matched: number of valid entries in @out
 * @f: names the failing call
 *
 * The kernel writes min(nkeys, matches) entries and returns the match count
 * in entry 0's nkeys (net/ipv4/tcp_ao.c, tcp_ao_copy_mkts_to_user()); optlen
 * is the size of one entry, not of the array.
 *
 * Result: 0, or -errno (-ENOENT when the socket has no TCP-AO state).
 */
int dump_keys(int fd, const tcp_ao_getsockopt_ext& filter, std::unique_ptr<KeyDump>* out, size_t* matched, Failure* f) {
  size_t capacity = 8;
  for (;;) {
    auto dump = std::make_unique<KeyDump>(capacity);
    tcp_ao_getsockopt_ext* entries = dump->data();
    entries[0] = filter;
    entries[0].nkeys = static_cast<uint32_t>(capacity);
    socklen_t len = sizeof(tcp_ao_getsockopt_ext);
    if (getsockopt(fd, IPPROTO_TCP, TCP_AO_GET_KEYS, entries, &len) < 0) {
      return record(f, "getsockopt", "TCP_AO_GET_KEYS");
    }
    size_t found = entries[0].nkeys;
    if (found <= capacity) {
      *matched = found;
      *out = std::move(dump);
      return 0;
    }
    if (found > kMaxDumpKeys) return record_err(f, E2BIG, "getsockopt", "TCP_AO_GET_KEYS");
    capacity = found;
  }
}

/**
 * find_key() - look up one installed key by address, prefix and ids
 * @fd: TCP socket, @socket_family: its domain
 * @peer, @sndid, @rcvid, @ifindex: the key's identity as it was set
 * @dump, @index: the read-back array and the position of the key in it
 * @found: whether the key is installed
 *
 * Result: 0, or -errno from TCP_AO_GET_KEYS.
 */
int find_key(int fd, int socket_family, const Peer& peer, uint8_t sndid, uint8_t rcvid, int32_t ifindex,
             std::unique_ptr<KeyDump>* dump, size_t* index, bool* found, Failure* f) {
  tcp_ao_getsockopt_ext filter = {};
  key_sockaddr(peer, socket_family, &filter.addr);
  filter.prefix = peer.prefix;
  filter.sndid = sndid;
  filter.rcvid = rcvid;
  filter.keyflags = key_flags(ifindex, false);
  filter.ifindex = ifindex;
  size_t matched = 0;
  *found = false;
  int rc = dump_keys(fd, filter, dump, &matched, f);
  if (rc < 0) return rc;
  for (size_t i = 0; i < matched; i++) {
    const tcp_ao_getsockopt_ext& e = (*dump)->data()[i];
    if (e.sndid == sndid && e.rcvid == rcvid && same_key_address(e, peer)) {
      *index = i;
      *found = true;
      return 0;
    }
  }
  return 0;
}

void append_field(std::string* list, const char* name) {
  if (!list->empty()) list->append(",");
  list->append(name);
}

/**
 * verify_key() - compare the kernel's copy of a just-added key with @k
 * Result: 0 when it matches, kReadbackMismatch with f->mismatch naming the
 * differing fields, or -errno from TCP_AO_GET_KEYS. Key bytes never leave
 * this function; the read-back buffer is wiped.
 */
int verify_key(int fd, int socket_family, const KeySpec& k, Failure* f) {
  std::unique_ptr<KeyDump> dump;
  size_t index = 0;
  bool found = false;
  int rc = find_key(fd, socket_family, k.peer, k.sndid, k.rcvid, k.ifindex, &dump, &index, &found, f);
  if (rc < 0) return rc;
  if (!found) {
    f->mismatch = "missing";
    return kReadbackMismatch;
  }
  const tcp_ao_getsockopt_ext& e = dump->data()[index];
  std::string diff;
  if (strncmp(e.alg_name, readback_alg_name(k.alg_name), kAlgNameMax) != 0) append_field(&diff, "algorithm");
  if (e.keylen != k.expect_keylen) {
    append_field(&diff, "keylen");
  } else if (e.keylen > kMaxKeyLen || !same_bytes(e.key, k.expect_key, e.keylen)) {
    append_field(&diff, "key");
  }
  if (e.maclen != (k.maclen != 0 ? k.maclen : kDefaultMaclen)) append_field(&diff, "maclen");
  if (e.keyflags != key_flags(k.ifindex, k.exclude_options)) append_field(&diff, "keyflags");
  if (e.ifindex != k.ifindex) append_field(&diff, "ifindex");
  if (k.set_current && !e.is_current) append_field(&diff, "current");
  if (k.set_rnext && !e.is_rnext) append_field(&diff, "rnext");
  if (diff.empty()) return 0;
  f->mismatch = diff;
  return kReadbackMismatch;
}

int del_key_raw(int fd, int socket_family, const KeyRef& r) {
  tcp_ao_del_ext cmd = {};
  key_sockaddr(r.peer, socket_family, &cmd.addr);
  cmd.prefix = r.peer.prefix;
  cmd.sndid = r.sndid;
  cmd.rcvid = r.rcvid;
  cmd.ifindex = r.ifindex;
  cmd.keyflags = key_flags(r.ifindex, false);
  cmd.set_current = r.set_current ? 1 : 0;
  cmd.current_key = r.current_key;
  cmd.set_rnext = r.set_rnext ? 1 : 0;
  cmd.rnext = r.rnext;
  if (setsockopt(fd, IPPROTO_TCP, TCP_AO_DEL_KEY, &cmd, sizeof(cmd)) < 0) return -errno;
  return 0;
}

}  // namespace

UniqueFd::~UniqueFd() { reset(-1); }

void UniqueFd::reset(int fd) noexcept {
  // No EINTR retry: on Linux the fd is released even when close() is interrupted.
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

KeySpec::~KeySpec() {
  wipe(key, sizeof(key));
  wipe(expect_key, sizeof(expect_key));
}

void wipe(void* p, size_t n) { explicit_bzero(p, n); }

int parse_ip(const char* text, Peer* out) {
  Peer p;
  if (inet_pton(AF_INET, text, p.addr) == 1) {
    p.family = AF_INET;
    p.prefix = 32;
  } else if (inet_pton(AF_INET6, text, p.addr) == 1) {
    p.family = AF_INET6;
    p.prefix = 128;
  } else {
    return -EINVAL;
  }
  *out = p;
  return 0;
}

std::string format_ip(const Peer& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (p.family != AF_INET && p.family != AF_INET6) return "?";
  if (inet_ntop(p.family, p.addr, buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

const char* readback_alg_name(const char* alg_name) {
  // net/ipv4/tcp_ao.c, tcp_ao_parse_crypto(): "cmac(aes128)" selects the
  // RFC 5926 KDF and is stored as "cmac(aes)", which GET_KEYS reports.
  if (strncmp(alg_name, "cmac(aes128)", kAlgNameMax) == 0) return "cmac(aes)";
  return alg_name;
}

/**
 * probe() - ask a fresh TCP socket for TCP_AO_INFO with a zeroed buffer
 * The kernel reads the buffer as input and checks its reserved fields before
 * the ENOENT check (tcp_ao_get_sock_info()), so it must be zeroed.
 *
 * Result: -ENOENT on a kernel with TCP-AO (no keys yet), -ENOPROTOOPT
 * without CONFIG_TCP_AO, other -errno with f naming the call.
 */
int probe(Failure* f) {
  UniqueFd fd;
  fd.reset(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (fd.get() < 0 && errno == EAFNOSUPPORT) {
    fd.reset(socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  }
  if (fd.get() < 0) return record(f, "socket", nullptr);
  tcp_ao_info_opt_ext info = {};
  socklen_t len = sizeof(info);
  if (getsockopt(fd.get(), IPPROTO_TCP, TCP_AO_INFO, &info, &len) < 0) {
    return record(f, "getsockopt", "TCP_AO_INFO");
  }
  return 0;
}

/**
 * check_tcp_socket() - make sure @fd is an open AF_INET/AF_INET6 TCP socket
 * Result: 0 with *family set, or -EBADF/-ENOTSOCK/-EAFNOSUPPORT/-EPROTOTYPE
 * with f->bad_fd set.
 */
int check_tcp_socket(int fd, int* family, Failure* f) {
  int domain = 0, type = 0, protocol = 0;
  socklen_t len = sizeof(int);
  f->bad_fd = true;
  if (fd < 0) return record_err(f, EBADF, "getsockopt", "SO_DOMAIN");
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) return record(f, "getsockopt", "SO_DOMAIN");
  if (domain != AF_INET && domain != AF_INET6) return record_err(f, EAFNOSUPPORT, "getsockopt", "SO_DOMAIN");
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return record(f, "getsockopt", "SO_TYPE");
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0) return record(f, "getsockopt", "SO_PROTOCOL");
  if (type != SOCK_STREAM || protocol != IPPROTO_TCP) return record_err(f, EPROTOTYPE, "getsockopt", "SO_PROTOCOL");
  f->bad_fd = false;
  *family = domain;
  return 0;
}

/**
 * open_tcp_socket() - socket(@family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)
 * Result: 0 with *out_fd set, or -errno.
 */
int open_tcp_socket(int family, int* out_fd, Failure* f) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return record(f, "socket", nullptr);
  *out_fd = fd;
  return 0;
}

/**
 * close_fd() - close(@fd); an interrupted close still releases the fd on Linux.
 * Result: 0, or -errno (-EBADF for an fd that is not open).
 */
int close_fd(int fd, Failure* f) {
  if (fd < 0) return record_err(f, EBADF, "close", nullptr);
  if (close(fd) < 0 && errno != EINTR) return record(f, "close", nullptr);
  return 0;
}

/**
 * set_keepalive() - SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT
 * libuv (Node 20) sets only the idle time, so the interval and probe count
 * the config asks for are set here.
 *
 * Result: 0, or -errno.
 */
int set_keepalive(int fd, int idle_secs, int interval_secs, int probes, Failure* f) {
  int family = 0;
  int rc = check_tcp_socket(fd, &family, f);
  if (rc < 0) return rc;
  const int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0) return record(f, "setsockopt", "SO_KEEPALIVE");
  if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_secs, sizeof(idle_secs)) < 0) {
    return record(f, "setsockopt", "TCP_KEEPIDLE");
  }
  if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_secs, sizeof(interval_secs)) < 0) {
    return record(f, "setsockopt", "TCP_KEEPINTVL");
  }
  if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) < 0) {
    return record(f, "setsockopt", "TCP_KEEPCNT");
  }
  return 0;
}

/**
 * add_key() - setsockopt(TCP_AO_ADD_KEY), then read the key back
 * An IPv6 key on an IPv4 socket is refused with -EAFNOSUPPORT. If the
 * read-back fails or differs, the key is deleted again so the socket never
 * keeps a key nobody verified. The kernel refuses to delete a key that is
 * current or RNext, or the last one (net/ipv4/tcp_ao.c, tcp_ao_delete_key(),
 * -EBUSY); then the connection is shut down (both directions), so no byte
 * passes under the unverified key. The fd itself stays open: it belongs to
 * the caller, and closing it here would let the number be reused under them.
 *
 * Result: 0, -errno, or kReadbackMismatch with f->mismatch set (and
 * f->unremoved_errno when the key could not be deleted).
 */
int add_key(int fd, const KeySpec& k, Failure* f) {
  int family = 0;
  int rc = check_tcp_socket(fd, &family, f);
  if (rc < 0) return rc;
  if (k.peer.family == AF_INET6 && family == AF_INET) {
    return record_err(f, EAFNOSUPPORT, "setsockopt", "TCP_AO_ADD_KEY");
  }
  if (k.keylen == 0 || k.keylen > kMaxKeyLen || k.expect_keylen == 0 || k.expect_keylen > kMaxKeyLen ||
      strnlen(k.alg_name, kAlgNameMax) == kAlgNameMax) {
    return record_err(f, EINVAL, "setsockopt", "TCP_AO_ADD_KEY");
  }

  tcp_ao_add_ext cmd = {};
  key_sockaddr(k.peer, family, &cmd.addr);
  memcpy(cmd.alg_name, k.alg_name, strnlen(k.alg_name, kAlgNameMax - 1));
  cmd.ifindex = k.ifindex;
  cmd.set_current = k.set_current ? 1 : 0;
  cmd.set_rnext = k.set_rnext ? 1 : 0;
  cmd.prefix = k.peer.prefix;
  cmd.sndid = k.sndid;
  cmd.rcvid = k.rcvid;
  cmd.maclen = k.maclen;
  cmd.keyflags = key_flags(k.ifindex, k.exclude_options);
  cmd.keylen = k.keylen;
  memcpy(cmd.key, k.key, k.keylen);
  int set = setsockopt(fd, IPPROTO_TCP, TCP_AO_ADD_KEY, &cmd, sizeof(cmd));
  int set_errno = errno;
  wipe(cmd.key, sizeof(cmd.key));
  if (set < 0) return record_err(f, set_errno, "setsockopt", "TCP_AO_ADD_KEY");

  rc = verify_key(fd, family, k, f);
  if (rc == 0) return 0;
  KeyRef ref;
  ref.peer = k.peer;
  ref.sndid = k.sndid;
  ref.rcvid = k.rcvid;
  ref.ifindex = k.ifindex;
  int deleted = del_key_raw(fd, family, ref);
  if (deleted < 0) {
    f->unremoved_errno = -deleted;
    shutdown(fd, SHUT_RDWR);
    // The caller must learn that the socket is unusable even when the
    // read-back itself failed with an errno.
    if (rc < 0) {
      f->mismatch = "readback-failed";
      rc = kReadbackMismatch;
    }
  }
  return rc;
}

/**
 * delete_key() - setsockopt(TCP_AO_DEL_KEY), then check the key is gone
 * Result: 0, -errno, or kReadbackMismatch ("still-installed").
 */
int delete_key(int fd, const KeyRef& r, Failure* f) {
  int family = 0;
  int rc = check_tcp_socket(fd, &family, f);
  if (rc < 0) return rc;
  if (r.peer.family == AF_INET6 && family == AF_INET) {
    return record_err(f, EAFNOSUPPORT, "setsockopt", "TCP_AO_DEL_KEY");
  }
  rc = del_key_raw(fd, family, r);
  if (rc < 0) return record_err(f, -rc, "setsockopt", "TCP_AO_DEL_KEY");

  std::unique_ptr<KeyDump> dump;
  size_t index = 0;
  bool found = false;
  rc = find_key(fd, family, r.peer, r.sndid, r.rcvid, r.ifindex, &dump, &index, &found, f);
  if (rc == -ENOENT) return 0;
  if (rc < 0) return rc;
  if (found) {
    f->mismatch = "still-installed";
    return kReadbackMismatch;
  }
  return 0;
}

/**
 * get_keys() - every MKT on @fd (TCP_AO_GET_KEYS with get_all), minus key bytes
 * Result: 0, or -errno (-ENOENT when the socket has no TCP-AO state).
 */
int get_keys(int fd, std::vector<KeyInfo>* out, Failure* f) {
  int family = 0;
  int rc = check_tcp_socket(fd, &family, f);
  if (rc < 0) return rc;
  tcp_ao_getsockopt_ext filter = {};
  filter.get_all = 1;
  std::unique_ptr<KeyDump> dump;
  size_t matched = 0;
  rc = dump_keys(fd, filter, &dump, &matched, f);
  if (rc < 0) return rc;
  out->clear();
  for (size_t i = 0; i < matched; i++) {
    const tcp_ao_getsockopt_ext& e = dump->data()[i];
    KeyInfo info;
    info.peer = peer_of(e);
    memcpy(info.alg_name, e.alg_name, kAlgNameMax - 1);
    info.sndid = e.sndid;
    info.rcvid = e.rcvid;
    info.maclen = e.maclen;
    info.keyflags = e.keyflags;
    info.keylen = e.keylen;
    info.ifindex = e.ifindex;
    info.is_current = e.is_current != 0;
    info.is_rnext = e.is_rnext != 0;
    info.pkt_good = e.pkt_good;
    info.pkt_bad = e.pkt_bad;
    out->push_back(info);
  }
  return 0;
}

/**
 * get_info() - getsockopt(TCP_AO_INFO) with a zeroed buffer (see probe())
 * Result: 0, or -errno (-ENOENT when the socket has no TCP-AO state).
 */
int get_info(int fd, AoState* out, Failure* f) {
  int family = 0;
  int rc = check_tcp_socket(fd, &family, f);
  if (rc < 0) return rc;
  tcp_ao_info_opt_ext info = {};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_AO_INFO, &info, &len) < 0) return record(f, "getsockopt", "TCP_AO_INFO");
  out->ao_required = info.ao_required != 0;
  out->accept_icmps = info.accept_icmps != 0;
  out->has_current = info.set_current != 0;
  out->has_rnext = info.set_rnext != 0;
  out->current_key = info.current_key;
  out->rnext = info.rnext;
  out->pkt_good = info.pkt_good;
  out->pkt_bad = info.pkt_bad;
  out->pkt_key_not_found = info.pkt_key_not_found;
  out->pkt_ao_required = info.pkt_ao_required;
  out->pkt_dropped_icmp = info.pkt_dropped_icmp;
  return 0;
}

/**
 * set_info() - setsockopt(TCP_AO_INFO) changing only the fields in @u
 * The kernel assigns ao_required and accept_icmps on every call
 * (tcp_ao_info_cmd()), so the current values are read first and kept.
 * Counters are never touched.
 *
 * Result: 0, or -errno.
 */
int set_info(int fd, const AoUpdate& u, Failure* f) {
  AoState now;
  int rc = get_info(fd, &now, f);
  if (rc < 0 && rc != -ENOENT) return rc;
  tcp_ao_info_opt_ext cmd = {};
  cmd.ao_required = u.ao_required >= 0 ? (u.ao_required != 0) : now.ao_required;
  cmd.accept_icmps = u.accept_icmps >= 0 ? (u.accept_icmps != 0) : now.accept_icmps;
  cmd.set_current = u.set_current ? 1 : 0;
  cmd.current_key = u.current_key;
  cmd.set_rnext = u.set_rnext ? 1 : 0;
  cmd.rnext = u.rnext;
  if (setsockopt(fd, IPPROTO_TCP, TCP_AO_INFO, &cmd, sizeof(cmd)) < 0) return record(f, "setsockopt", "TCP_AO_INFO");
  return 0;
}

namespace {

// Adds every key (with read-back) and then sets ao_required, so the socket
// refuses unsigned segments from its first SYN on.
int install_keys(int fd, const std::vector<KeySpec>& keys, Failure* f) {
  for (size_t i = 0; i < keys.size(); i++) {
    int rc = add_key(fd, keys[i], f);
    if (rc != 0) {
      f->key_index = static_cast<long>(i);
      return rc;
    }
  }
  AoUpdate required;
  required.ao_required = 1;
  return set_info(fd, required, f);
}

}  // namespace

/**
 * create_listener() - a TCP-AO listening socket
 * socket, SO_REUSEADDR, IPV6_V6ONLY=1 for IPv6 (IPv4 peers need their own
 * IPv4 listener: keys on an IPv6 socket would have to be v4-mapped), bind,
 * every key added and read back, ao_required, listen. No key list, no socket.
 *
 * Result: 0 with *out_fd set, or -errno / kReadbackMismatch; the socket is
 * closed on every failure.
 */
int create_listener(const ListenSpec& spec, const std::vector<KeySpec>& keys, int* out_fd, Failure* f) {
  if (keys.empty()) return record_err(f, EINVAL, "setsockopt", "TCP_AO_ADD_KEY");
  int raw = -1;
  int rc = open_tcp_socket(spec.local.family, &raw, f);
  if (rc < 0) return rc;
  UniqueFd fd;
  fd.reset(raw);
  int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
    return record(f, "setsockopt", "SO_REUSEADDR");
  }
  if (spec.local.family == AF_INET6 && setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
    return record(f, "setsockopt", "IPV6_V6ONLY");
  }
  struct sockaddr_storage ss;
  socklen_t sslen = endpoint_sockaddr(spec.local, spec.port, &ss);
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&ss), sslen) < 0) return record(f, "bind", nullptr);
  rc = install_keys(fd.get(), keys, f);
  if (rc != 0) return rc;
  if (listen(fd.get(), spec.backlog) < 0) return record(f, "listen", nullptr);
  *out_fd = fd.release();
  return 0;
}

/**
 * connect_start() - a TCP-AO socket with a non-blocking connect() under way
 * socket, optional bind to the local address, keys added and read back,
 * ao_required, connect. EKEYREJECTED from connect() means no key covers the
 * remote address (tcp_ao_connect_init() finds no matching MKT).
 *
 * Result: 0 with *out_fd and *in_progress set, or -errno /
 * kReadbackMismatch; the socket is closed on every failure.
 */
int connect_start(const ConnectSpec& spec, const std::vector<KeySpec>& keys, int* out_fd, bool* in_progress,
                  Failure* f) {
  if (keys.empty()) return record_err(f, EINVAL, "setsockopt", "TCP_AO_ADD_KEY");
  int raw = -1;
  int rc = open_tcp_socket(spec.remote.family, &raw, f);
  if (rc < 0) return rc;
  UniqueFd fd;
  fd.reset(raw);
  struct sockaddr_storage ss;
  if (spec.has_local) {
    socklen_t sslen = endpoint_sockaddr(spec.local, 0, &ss);
    if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&ss), sslen) < 0) return record(f, "bind", nullptr);
  }
  rc = install_keys(fd.get(), keys, f);
  if (rc != 0) return rc;
  socklen_t sslen = endpoint_sockaddr(spec.remote, spec.port, &ss);
  if (connect(fd.get(), reinterpret_cast<struct sockaddr*>(&ss), sslen) == 0) {
    *in_progress = false;
  } else if (errno == EINPROGRESS || errno == EINTR) {
    // An interrupted non-blocking connect carries on asynchronously.
    *in_progress = true;
  } else {
    return record(f, "connect", nullptr);
  }
  *out_fd = fd.release();
  return 0;
}

/**
 * harden_process() - keep key bytes out of core dumps and other users' reach
 * PR_SET_DUMPABLE 0 stops core dumps and makes /proc/PID/{environ,mem,maps}
 * root-owned, so another process of the same uid cannot read or ptrace this
 * one (fs/proc/base.c, task_dump_owner(); kernel/ptrace.c,
 * __ptrace_may_access()). RLIMIT_CORE 0 (soft and hard) keeps that so if
 * something sets the process dumpable again (a setuid change resets it from
 * fs.suid_dumpable). Both are read back.
 *
 * Result: 0 with @out filled, or -errno.
 */
int harden_process(ProcessGuard* out, Failure* f) {
  struct rlimit none = {};
  if (setrlimit(RLIMIT_CORE, &none) < 0) return record(f, "setrlimit", "RLIMIT_CORE");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return record(f, "prctl", "PR_SET_DUMPABLE");
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  if (dumpable < 0) return record(f, "prctl", "PR_GET_DUMPABLE");
  struct rlimit now = {};
  if (getrlimit(RLIMIT_CORE, &now) < 0) return record(f, "getrlimit", "RLIMIT_CORE");
  out->dumpable = dumpable;
  out->core_soft = now.rlim_cur;
  out->core_hard = now.rlim_max;
  return 0;
}

/**
 * env_value_length() - strlen of environment variable @name's value
 * Result: the length, or -ENOENT when it is not set.
 */
long env_value_length(const char* name) {
  const char* value = getenv(name);
  if (value == nullptr) return -ENOENT;
  return static_cast<long>(strlen(value));
}

/**
 * take_env_value() - move environment variable @name's value into @out
 * Copies @len bytes (env_value_length()), overwrites the value where it lies
 * (for a variable given at exec that is the initial stack, the memory behind
 * /proc/PID/environ) and removes the variable, so the process keeps no other
 * copy and later getenv() calls cannot hand it out again.
 *
 * Result: 0, -ENOENT when it is not set, -EINVAL when its length changed.
 */
int take_env_value(const char* name, uint8_t* out, size_t len) {
  char* value = getenv(name);
  if (value == nullptr) return -ENOENT;
  size_t actual = strlen(value);
  if (actual != len) return -EINVAL;
  memcpy(out, value, len);
  wipe(value, len);
  unsetenv(name);
  return 0;
}

/**
 * connect_result() - outcome of a non-blocking connect once @fd polls writable
 * Result: 0 when connected, -EINPROGRESS when not yet, or the connect -errno.
 */
int connect_result(int fd, Failure* f) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return record(f, "getsockopt", "SO_ERROR");
  if (err != 0) return record_err(f, err, "connect", nullptr);
  struct sockaddr_storage peer;
  socklen_t peer_len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<struct sockaddr*>(&peer), &peer_len) < 0) {
    if (errno == ENOTCONN) return -EINPROGRESS;
    return record(f, "getpeername", nullptr);
  }
  return 0;
}

}  // namespace tcpao
