// The native byte relay: one epoll loop on its own thread moves bytes between
// the two legs of every relayed connection. Plain C++: no Napi types here; the
// glue in relay_bindings.cc turns results into JS values and errors.
#ifndef NATIVE_RELAY_H_
#define NATIVE_RELAY_H_

#include <stdint.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tcp_ao_limits.h"

namespace tcpao {

// Why a relayed connection ended, as the loop saw it.
enum class RelayEndKind : uint8_t {
  kClosed = 0,         // a FIN each way, every byte delivered
  kIdleTimeout = 1,    // no traffic either way for the idle time
  kClientError = 2,    // a syscall on the client leg failed (err, syscall)
  kUpstreamError = 3,  // a syscall on the upstream leg failed (err, syscall)
  kAborted = 4,        // Abort() from the owner
};

// The byte counts of one connection, written by the loop, read by anyone.
struct RelayCounters {
  std::atomic<uint64_t> client_to_upstream{0};
  std::atomic<uint64_t> upstream_to_client{0};
};

// What the loop reports once per connection. The loop has removed both fds
// from its epoll set and never touches them again; they stay open until the
// owner calls relay_release_fds().
struct RelayEnd {
  uint64_t id = 0;
  RelayEndKind kind = RelayEndKind::kClosed;
  int err = 0;                    // positive errno for the error kinds
  const char* syscall = nullptr;  // "read", "write", "shutdown", "getsockopt(SO_ERROR)"
  bool reset = false;             // the legs must be reset (SO_LINGER 0), not closed
};

// Bytes read ahead by the owner before the hand-off (at most kRelayEarlyMaxBytes).
struct RelayEarlyBytes {
  const uint8_t* data = nullptr;
  size_t len = 0;
};

// What the native relay holds across every loop of the process.
struct RelayStats {
  int64_t connections = 0;  // relayed and not yet ended
  int64_t buffers = 0;      // relay buffers allocated, in use or kept for reuse
  int64_t pipes = 0;        // splice pipes open
};

class RelayLoop {
 public:
  // @on_end runs on the loop thread, once per connection. With @splice a
  // direction that fills a whole buffer switches to splice(2) through its
  // own pipe, so bulk bytes never cross user space.
  RelayLoop(std::function<void(const RelayEnd&)> on_end, bool splice);
  ~RelayLoop();
  RelayLoop(const RelayLoop&) = delete;
  RelayLoop& operator=(const RelayLoop&) = delete;

  // start() - create the epoll set and the wake-up eventfd, start the thread.
  // Result: 0, or -errno (nothing is left open).
  int Start();

  // add() - relay @client_fd and @upstream_fd (connected, non-blocking TCP
  // sockets the caller gives up) until both directions closed, an error, the
  // idle time (0: none) or Abort(). The loop owns neither fd: they are closed
  // only by relay_release_fds() after the end was reported.
  // @early[0] (client to upstream) and @early[1] (upstream to client) are bytes
  // the owner had already read from a source; each is written first, before
  // anything new is read from that source. At most kRelayEarlyMaxBytes each.
  // Result: 0, or -errno (-EMSGSIZE for early bytes over the limit).
  int Add(uint64_t id, int client_fd, int upstream_fd, uint32_t idle_ms, std::shared_ptr<RelayCounters> counters,
          const RelayEarlyBytes (&early)[2]);

  // abort() - end the connection with kAborted (if it has not ended yet).
  void Abort(uint64_t id);

  // stop() - end the thread; connections still open are left to the owner.
  void Stop();

  // stats() - the process-wide figures; safe from any thread.
  static RelayStats Stats();

 private:
  struct Conn;
  struct Command {
    enum Op { kAdd, kAbort } op;
    std::unique_ptr<Conn> conn;
    uint64_t id;
  };

  void Run();
  void Post(Command cmd);
  void DrainCommands();
  void OnEvent(Conn* c, int side, uint32_t events);
  void Pump(Conn* c);
  void Finish(Conn* c, RelayEndKind kind, int err, const char* syscall);
  // A buffer from the free list (or a new one; nullptr when malloc fails), and back.
  char* TakeBuffer();
  void GiveBackBuffer(char** buf);
  void SweepIdle(int64_t now_ms);

  std::function<void(const RelayEnd&)> on_end_;
  int epfd_ = -1;
  int wakefd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<Command> pending_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;  // loop thread only
  std::vector<char*> free_buffers_;                            // loop thread only
  std::vector<uint64_t> finished_;                             // ended this pass, freed at its end
  std::vector<Conn*> hot_;                                     // connections with work left after a pass
  uint32_t tick_ms_ = 0;                                       // idle sweep period; 0: no sweep
  int64_t now_ms_ = 0;
  bool splice_ = false;
};

// relay_release_fds() - close both legs of an ended connection, first setting
// SO_LINGER 0 on each when @reset, so the peers see a RST.
// Result: 0, or -errno of the first failed call (the fds are closed anyway).
int relay_release_fds(int client_fd, int upstream_fd, bool reset);

// relay_dup_fd() - a close-on-exec duplicate of @fd (F_DUPFD_CLOEXEC), made
// non-blocking.
// Result: the new fd, or -errno (nothing is left open).
int relay_dup_fd(int fd);

}  // namespace tcpao

#endif  // NATIVE_RELAY_H_
