// Plain C++ helpers around the TCP-AO socket options. Nothing here sees
// Napi types: every helper returns 0 or -errno (the kernel selftests' and
// BIRD's convention) and the glue in bindings.cc turns that into a JS error.
#ifndef NATIVE_TCP_AO_H_
#define NATIVE_TCP_AO_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "tcp_ao_limits.h"

namespace tcpao {

constexpr size_t kAlgNameMax = 64;

// Returned (positive) by add_key()/delete_key() when the kernel's copy read
// back with TCP_AO_GET_KEYS differs from what was set.
constexpr int kReadbackMismatch = 1;

// An IP address and prefix length, address bytes in network order.
struct Peer {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t addr[16] = {};
  uint8_t prefix = 0;
};

// One Master Key Tuple to install. Holds secret bytes, wiped on destruction.
struct KeySpec {
  Peer peer;
  uint8_t sndid = 0;
  uint8_t rcvid = 0;
  uint8_t maclen = 0;   // 0: kernel default (12)
  int32_t ifindex = 0;  // > 0 sets TCP_AO_KEYF_IFINDEX
  bool exclude_options = false;
  bool set_current = false;
  bool set_rnext = false;
  char alg_name[kAlgNameMax] = {};
  uint8_t key[kMaxKeyLen] = {};
  uint8_t keylen = 0;
  // The bytes TCP_AO_GET_KEYS must report: the key itself, except for
  // cmac(aes128) with a key that is not 16 bytes, where the kernel keeps the
  // RFC 5926 KDF output (net/ipv4/tcp_ao.c, tcp_ao_parse_crypto()).
  uint8_t expect_key[kMaxKeyLen] = {};
  uint8_t expect_keylen = 0;

  KeySpec() = default;
  KeySpec(const KeySpec&) = default;
  KeySpec& operator=(const KeySpec&) = default;
  ~KeySpec();
};

// Identifies an installed key for TCP_AO_DEL_KEY.
struct KeyRef {
  Peer peer;
  uint8_t sndid = 0;
  uint8_t rcvid = 0;
  int32_t ifindex = 0;
  bool set_current = false;
  uint8_t current_key = 0;
  bool set_rnext = false;
  uint8_t rnext = 0;
};

// One key as TCP_AO_GET_KEYS reports it, without the key bytes.
struct KeyInfo {
  Peer peer;
  char alg_name[kAlgNameMax] = {};
  uint8_t sndid = 0;
  uint8_t rcvid = 0;
  uint8_t maclen = 0;
  uint8_t keyflags = 0;
  uint8_t keylen = 0;
  int32_t ifindex = 0;
  bool is_current = false;
  bool is_rnext = false;
  uint64_t pkt_good = 0;
  uint64_t pkt_bad = 0;
};

// TCP_AO_INFO as read from a socket.
struct AoState {
  bool ao_required = false;
  bool accept_icmps = false;
  bool has_current = false;
  bool has_rnext = false;
  uint8_t current_key = 0;
  uint8_t rnext = 0;
  uint64_t pkt_good = 0;
  uint64_t pkt_bad = 0;
  uint64_t pkt_key_not_found = 0;
  uint64_t pkt_ao_required = 0;
  uint64_t pkt_dropped_icmp = 0;
};

// A change to TCP_AO_INFO; unset fields keep their current value.
struct AoUpdate {
  bool set_current = false;
  uint8_t current_key = 0;
  bool set_rnext = false;
  uint8_t rnext = 0;
  int ao_required = -1;  // -1 keep, 0 or 1
  int accept_icmps = -1;
};

struct ListenSpec {
  Peer local;  // prefix unused
  uint16_t port = 0;
  int backlog = 511;
};

struct ConnectSpec {
  Peer remote;
  uint16_t port = 0;
  bool has_local = false;
  Peer local;
};

// What failed in a multi-step helper, for the error message.
struct Failure {
  const char* syscall = nullptr;  // "setsockopt", "bind", ...
  const char* option = nullptr;   // "TCP_AO_ADD_KEY", or nullptr
  bool bad_fd = false;            // the fd argument is not an open TCP socket
  long key_index = -1;            // which key of a list, or -1
  std::string mismatch;           // read-back fields that differ, comma-separated
  // add_key() could not delete a key it failed to verify (the errno of
  // TCP_AO_DEL_KEY) and shut the connection down instead; 0 otherwise.
  int unremoved_errno = 0;
};

// Closes the fd unless release()d, so every early return is leak-free.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~UniqueFd();

  int get() const { return fd_; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd) noexcept;

 private:
  int fd_ = -1;
};

// What harden_process() left in place, read back from the kernel.
struct ProcessGuard {
  int dumpable = -1;       // PR_GET_DUMPABLE: 0 once hardened
  uint64_t core_soft = 0;  // RLIMIT_CORE
  uint64_t core_hard = 0;
};

void wipe(void* p, size_t n);
int parse_ip(const char* text, Peer* out);
std::string format_ip(const Peer& p);
const char* readback_alg_name(const char* alg_name);

int probe(Failure* f);
int check_tcp_socket(int fd, int* family, Failure* f);
int open_tcp_socket(int family, int* out_fd, Failure* f);
int close_fd(int fd, Failure* f);
int add_key(int fd, const KeySpec& k, Failure* f);
int delete_key(int fd, const KeyRef& r, Failure* f);
int get_keys(int fd, std::vector<KeyInfo>* out, Failure* f);
int get_info(int fd, AoState* out, Failure* f);
int set_info(int fd, const AoUpdate& u, Failure* f);
int create_listener(const ListenSpec& spec, const std::vector<KeySpec>& keys, int* out_fd, Failure* f);
int connect_start(const ConnectSpec& spec, const std::vector<KeySpec>& keys, int* out_fd, bool* in_progress,
                  Failure* f);
int connect_result(int fd, Failure* f);
int harden_process(ProcessGuard* out, Failure* f);
long env_value_length(const char* name);
int take_env_value(const char* name, uint8_t* out, size_t len);
int set_keepalive(int fd, int idle_secs, int interval_secs, int probes, Failure* f);

}  // namespace tcpao

#endif  // NATIVE_TCP_AO_H_
