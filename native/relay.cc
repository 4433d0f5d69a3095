// The native byte relay's epoll loop (relay.h). Edge-triggered: each fd is
// registered once for EPOLLIN | EPOLLOUT | EPOLLRDHUP and never modified, so
// a busy connection costs no epoll_ctl calls. Per direction at most one
// buffer of kBufferBytes is in flight; while it is not fully written the
// source is not read (backpressure), so a connection pins at most two
// buffers. Buffers come from a free list and go back to it as soon as their
// bytes are written, so an idle connection holds none.
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <utility>

namespace tcpao {
namespace {

constexpr size_t kBufferBytes = kRelayEarlyMaxBytes;
// The pipe a splicing direction moves bytes through; also its bound on bytes in flight.
constexpr int kPipeBytes = 256 * 1024;
// Chunks one direction may move per pass before the others get a turn.
constexpr int kBudget = 16;
// Buffers kept for reuse; more are freed once written.
constexpr size_t kMaxFreeBuffers = 64;
constexpr int kMaxEvents = 256;
constexpr uint32_t kMinTickMs = 5;
constexpr uint32_t kMaxTickMs = 1000;

// What every loop in the process holds right now; read by RelayLoop::Stats().
std::atomic<int64_t> g_buffers{0};
std::atomic<int64_t> g_pipes{0};
std::atomic<int64_t> g_conns{0};

char* AllocBuffer() {
  auto* buf = static_cast<char*>(malloc(kBufferBytes));
  if (buf != nullptr) g_buffers.fetch_add(1, std::memory_order_relaxed);
  return buf;
}

void FreeBuffer(char* buf) {
  if (buf == nullptr) return;
  free(buf);
  g_buffers.fetch_sub(1, std::memory_order_relaxed);
}

int64_t NowMs() {
  struct timespec ts = {};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

struct RelayLoop::Conn {
  // One fd's readiness as the edge-triggered events left it.
  struct Side {
    int fd = -1;
    bool can_read = false;
    bool can_write = false;
    bool hangup = false;  // EPOLLRDHUP/EPOLLHUP/EPOLLERR seen: read until 0 or an error
  };
  // One direction: bytes read from sides[src] and not yet written to sides[dst].
  struct Dir {
    int src = 0;
    int dst = 1;
    char* buf = nullptr;
    size_t off = 0;
    size_t len = 0;
    bool eof = false;   // the source sent its FIN
    bool shut = false;  // the FIN was passed on: shutdown(dst, SHUT_WR)
    int pipe_r = -1;    // splice mode: the pipe, and how many bytes are in it
    int pipe_w = -1;
    size_t in_pipe = 0;

    // Best effort: a direction without a pipe keeps copying through its buffer.
    void OpenPipe() {
      int fds[2];
      if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return;
      g_pipes.fetch_add(1, std::memory_order_relaxed);
      // A smaller pipe (the user's pipe quota is spent) only costs more syscalls.
      (void)fcntl(fds[1], F_SETPIPE_SZ, kPipeBytes);
      pipe_r = fds[0];
      pipe_w = fds[1];
    }
    void ClosePipe() {
      if (pipe_r >= 0) g_pipes.fetch_sub(1, std::memory_order_relaxed);
      if (pipe_r >= 0) close(pipe_r);
      if (pipe_w >= 0) close(pipe_w);
      pipe_r = pipe_w = -1;
      in_pipe = 0;
    }
  };
  // What an epoll event points at: the connection and which of its fds.
  struct Tag {
    Conn* conn;
    int side;
  };

  // Finish() has handed buffers and pipes back already; this frees a
  // connection that never finished (the loop stopped, or a failed Add()).
  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    for (Dir& d : dirs) {
      FreeBuffer(d.buf);
      d.ClosePipe();
    }
  }

  uint64_t id = 0;
  Side sides[2];
  Dir dirs[2];
  Tag tags[2];
  uint32_t idle_ms = 0;
  int64_t last_ms = 0;
  bool queued = false;  // already in this pass's list
  bool done = false;
  std::shared_ptr<RelayCounters> counters;
};

RelayLoop::RelayLoop(std::function<void(const RelayEnd&)> on_end, bool splice)
    : on_end_(std::move(on_end)), splice_(splice) {}

RelayLoop::~RelayLoop() {
  Stop();
  for (char* b : free_buffers_) FreeBuffer(b);
}

int RelayLoop::Start() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return -errno;
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int rc = 0;
  if (wakefd_ < 0) {
    rc = -errno;
    goto out;
  }
  {
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
      rc = -errno;
      goto out;
    }
  }
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    rc = -(e.code().value() != 0 ? e.code().value() : EAGAIN);
    goto out;
  }
  return 0;
out:
  if (wakefd_ >= 0) close(wakefd_);
  close(epfd_);
  wakefd_ = epfd_ = -1;
  return rc;
}

void RelayLoop::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  uint64_t one = 1;
  // The eventfd counter cannot overflow from these writes; a failure leaves
  // the thread to notice stopping_ at its next wake-up.
  (void)!write(wakefd_, &one, sizeof(one));
  thread_.join();
  close(wakefd_);
  close(epfd_);
  wakefd_ = epfd_ = -1;
}

void RelayLoop::Post(Command cmd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(cmd));
  }
  uint64_t one = 1;
  (void)!write(wakefd_, &one, sizeof(one));
}

int RelayLoop::Add(uint64_t id, int client_fd, int upstream_fd, uint32_t idle_ms,
                   std::shared_ptr<RelayCounters> counters, const RelayEarlyBytes (&early)[2]) {
  if (!thread_.joinable()) return -EINVAL;
  if (early[0].len > kRelayEarlyMaxBytes || early[1].len > kRelayEarlyMaxBytes) return -EMSGSIZE;
  std::unique_ptr<Conn> c;
  try {
    c = std::make_unique<Conn>();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  // Copied here, on the owner's thread: the loop only ever sees its own buffers.
  for (int d = 0; d < 2; d++) {
    if (early[d].len == 0) continue;
    c->dirs[d].buf = AllocBuffer();
    if (c->dirs[d].buf == nullptr) return -ENOMEM;
    memcpy(c->dirs[d].buf, early[d].data, early[d].len);
    c->dirs[d].len = early[d].len;
  }
  c->id = id;
  c->sides[0].fd = client_fd;
  c->sides[1].fd = upstream_fd;
  c->dirs[1].src = 1;
  c->dirs[1].dst = 0;
  c->tags[0] = {c.get(), 0};
  c->tags[1] = {c.get(), 1};
  c->idle_ms = idle_ms;
  c->counters = std::move(counters);
  try {
    Post({Command::kAdd, std::move(c), id});
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  return 0;
}

void RelayLoop::Abort(uint64_t id) {
  if (!thread_.joinable()) return;
  Post({Command::kAbort, nullptr, id});
}

void RelayLoop::DrainCommands() {
  uint64_t count = 0;
  (void)!read(wakefd_, &count, sizeof(count));
  std::vector<Command> cmds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cmds.swap(pending_);
  }
  for (Command& cmd : cmds) {
    if (cmd.op == Command::kAbort) {
      auto it = conns_.find(cmd.id);
      if (it != conns_.end() && !it->second->done) Finish(it->second.get(), RelayEndKind::kAborted, 0, nullptr);
      continue;
    }
    Conn* c = cmd.conn.get();
    c->last_ms = now_ms_;
    conns_.emplace(c->id, std::move(cmd.conn));
    g_conns.fetch_add(1, std::memory_order_relaxed);
    if (c->idle_ms > 0) {
      uint32_t tick = std::clamp(c->idle_ms / 4, kMinTickMs, kMaxTickMs);
      tick_ms_ = tick_ms_ == 0 ? tick : std::min(tick_ms_, tick);
    }
    for (int s = 0; s < 2; s++) {
      struct epoll_event ev = {};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = &c->tags[s];
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, c->sides[s].fd, &ev) < 0) {
        Finish(c, s == 0 ? RelayEndKind::kClientError : RelayEndKind::kUpstreamError, errno, "epoll_ctl");
        break;
      }
    }
  }
}

void RelayLoop::OnEvent(Conn* c, int side, uint32_t events) {
  Conn::Side& s = c->sides[side];
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.can_read = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s.can_write = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.hangup = true;
}

void RelayLoop::Pump(Conn* c) {
  bool more = false;
  for (Conn::Dir& d : c->dirs) {
    Conn::Side& src = c->sides[d.src];
    Conn::Side& dst = c->sides[d.dst];
    std::atomic<uint64_t>& count = d.src == 0 ? c->counters->client_to_upstream : c->counters->upstream_to_client;
    const RelayEndKind src_error = d.src == 0 ? RelayEndKind::kClientError : RelayEndKind::kUpstreamError;
    const RelayEndKind dst_error = d.dst == 0 ? RelayEndKind::kClientError : RelayEndKind::kUpstreamError;
    int budget = kBudget;
    for (;;) {
      if (d.in_pipe > 0) {
        if (!dst.can_write) break;
        ssize_t n = splice(d.pipe_r, nullptr, dst.fd, nullptr, d.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) {
            dst.can_write = false;
            break;
          }
          Finish(c, dst_error, errno, "splice");
          return;
        }
        d.in_pipe -= static_cast<size_t>(n);
        count.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        c->last_ms = now_ms_;
        if (d.in_pipe > 0) {
          dst.can_write = false;
          break;
        }
        continue;
      }
      if (d.off < d.len) {
        if (!dst.can_write) break;
        ssize_t n = send(dst.fd, d.buf + d.off, d.len - d.off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            dst.can_write = false;
            break;
          }
          Finish(c, dst_error, errno, "write");
          return;
        }
        d.off += static_cast<size_t>(n);
        count.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        c->last_ms = now_ms_;
        if (d.off < d.len) {
          // A short write means the send buffer is full; EPOLLOUT comes when it has room.
          dst.can_write = false;
          break;
        }
        d.off = d.len = 0;
        GiveBackBuffer(&d.buf);
        continue;
      }
      if (d.eof) {
        if (!d.shut) {
          d.shut = true;
          if (shutdown(dst.fd, SHUT_WR) < 0 && errno != ENOTCONN) {
            Finish(c, dst_error, errno, "shutdown");
            return;
          }
        }
        break;
      }
      if (!src.can_read) break;
      if (budget-- == 0) {
        more = true;
        break;
      }
      const bool piping = d.pipe_w >= 0;
      if (!piping && d.buf == nullptr) {
        d.buf = TakeBuffer();
        if (d.buf == nullptr) {
          Finish(c, src_error, ENOMEM, "read");
          return;
        }
      }
      ssize_t n;
      do {
        n = piping ? splice(src.fd, nullptr, d.pipe_w, nullptr, kPipeBytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                   : recv(src.fd, d.buf, kBufferBytes, MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        // A splicing direction's pipe is empty here, so EAGAIN means the socket is.
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          src.can_read = false;
          break;
        }
        Finish(c, src_error, errno, piping ? "splice" : "read");
        return;
      }
      if (n == 0) {
        d.eof = true;
        src.can_read = false;
        continue;
      }
      if (piping) {
        // No short-read shortcut: tcp_splice_read() also stops when the pipe runs out of slots.
        c->last_ms = now_ms_;
        d.in_pipe = static_cast<size_t>(n);
        continue;
      }
      c->last_ms = now_ms_;
      // A short read emptied the receive queue; new data raises a new edge.
      // After a hang-up edge keep reading until the FIN (0) or the error shows.
      if (static_cast<size_t>(n) < kBufferBytes && !src.hangup) src.can_read = false;
      d.off = 0;
      d.len = static_cast<size_t>(n);
      // A full buffer looks like bulk: move the rest of this direction with splice.
      if (splice_ && static_cast<size_t>(n) == kBufferBytes) d.OpenPipe();
    }
  }
  if (c->dirs[0].shut && c->dirs[1].shut) {
    Finish(c, RelayEndKind::kClosed, 0, nullptr);
    return;
  }
  if (more) hot_.push_back(c);
}

void RelayLoop::Finish(Conn* c, RelayEndKind kind, int err, const char* syscall) {
  if (c->done) return;
  c->done = true;
  for (Conn::Side& s : c->sides) {
    struct epoll_event ev = {};
    // ENOENT when the add failed; either way the loop will not see the fd again.
    (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, s.fd, &ev);
  }
  for (Conn::Dir& d : c->dirs) {
    if (d.buf != nullptr) GiveBackBuffer(&d.buf);
    d.ClosePipe();
  }
  RelayEnd end;
  end.id = c->id;
  end.kind = kind;
  end.err = err;
  end.syscall = syscall;
  end.reset = kind != RelayEndKind::kClosed;
  finished_.push_back(c->id);
  on_end_(end);
}

char* RelayLoop::TakeBuffer() {
  if (free_buffers_.empty()) return AllocBuffer();
  char* buf = free_buffers_.back();
  free_buffers_.pop_back();
  return buf;
}

void RelayLoop::GiveBackBuffer(char** buf) {
  if (free_buffers_.size() < kMaxFreeBuffers) {
    free_buffers_.push_back(*buf);
  } else {
    FreeBuffer(*buf);
  }
  *buf = nullptr;
}

RelayStats RelayLoop::Stats() {
  RelayStats out;
  out.connections = g_conns.load(std::memory_order_relaxed);
  out.buffers = g_buffers.load(std::memory_order_relaxed);
  out.pipes = g_pipes.load(std::memory_order_relaxed);
  return out;
}

void RelayLoop::SweepIdle(int64_t now_ms) {
  for (auto& [id, conn] : conns_) {
    Conn* c = conn.get();
    if (c->done || c->idle_ms == 0) continue;
    if (now_ms - c->last_ms >= static_cast<int64_t>(c->idle_ms)) Finish(c, RelayEndKind::kIdleTimeout, 0, nullptr);
  }
}

void RelayLoop::Run() {
  // Signals belong to Node's own handlers on the main thread.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  struct epoll_event events[kMaxEvents];
  std::vector<Conn*> touched;
  now_ms_ = NowMs();
  int64_t last_sweep = now_ms_;
  while (!stopping_.load()) {
    int timeout = !hot_.empty() ? 0 : tick_ms_ > 0 ? static_cast<int>(tick_ms_) : -1;
    int n = epoll_wait(epfd_, events, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) break;
    now_ms_ = NowMs();
    touched.clear();
    for (Conn* c : hot_) {
      if (!c->done && !c->queued) {
        c->queued = true;
        touched.push_back(c);
      }
    }
    hot_.clear();
    bool commands = false;
    for (int i = 0; i < n; i++) {
      auto* tag = static_cast<Conn::Tag*>(events[i].data.ptr);
      if (tag == nullptr) {
        commands = true;
        continue;
      }
      Conn* c = tag->conn;
      if (c->done) continue;
      OnEvent(c, tag->side, events[i].events);
      if (!c->queued) {
        c->queued = true;
        touched.push_back(c);
      }
    }
    for (Conn* c : touched) {
      c->queued = false;
      if (!c->done) Pump(c);
    }
    if (commands) DrainCommands();
    if (tick_ms_ > 0 && now_ms_ - last_sweep >= tick_ms_) {
      last_sweep = now_ms_;
      SweepIdle(now_ms_);
    }
    if (!finished_.empty()) {
      hot_.erase(std::remove_if(hot_.begin(), hot_.end(), [](Conn* c) { return c->done; }), hot_.end());
      for (uint64_t id : finished_) {
        if (conns_.erase(id) > 0) g_conns.fetch_sub(1, std::memory_order_relaxed);
      }
      finished_.clear();
    }
  }
}

int relay_release_fds(int client_fd, int upstream_fd, bool reset) {
  int rc = 0;
  for (int fd : {client_fd, upstream_fd}) {
    if (fd < 0) continue;
    if (reset) {
      struct linger lg = {};
      lg.l_onoff = 1;
      lg.l_linger = 0;
      if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 && rc == 0) rc = -errno;
    }
    // No EINTR retry: on Linux the fd is released even when close() is interrupted.
    if (close(fd) < 0 && rc == 0) rc = -errno;
  }
  return rc;
}

int relay_dup_fd(int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return -errno;
  int flags = fcntl(copy, F_GETFL);
  if (flags < 0 || fcntl(copy, F_SETFL, flags | O_NONBLOCK) < 0) {
    int err = errno;
    close(copy);
    return -err;
  }
  return copy;
}

}  // namespace tcpao
