#include "ao_connect.h"

#include <errno.h>
#include <stdint.h>
#include <uv.h>

#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "js_errors.h"
#include "tcp_ao.h"
#include "tcp_ao_limits.h"

namespace tcpao {
namespace {

// One connect in flight. Owns the fd until a resolved promise has handed it
// to JS, and deletes itself once both libuv handles are closed and the
// promise is settled.
class PendingConnect {
 public:
  // The fd moves in only after everything that can throw (the async
  // context) is built, so a throw leaves it with the caller's UniqueFd.
  PendingConnect(Napi::Env env, Napi::Promise::Deferred deferred, UniqueFd* fd)
      : env_(env), deferred_(deferred), context_(new Napi::AsyncContext(env, "tcpao:connectAo")), fd_(std::move(*fd)) {
    napi_add_env_cleanup_hook(env_, OnEnvCleanup, this);
  }
  PendingConnect(const PendingConnect&) = delete;
  PendingConnect& operator=(const PendingConnect&) = delete;

  // Result: 0, or a libuv error (negative errno); on failure the caller
  // still owns this object and the fd.
  int Start(uv_loop_t* loop, uint32_t timeout_ms) {
    int rc = uv_poll_init_socket(loop, &poll_, fd_.get());
    if (rc < 0) return rc;
    poll_.data = this;
    open_handles_++;
    rc = uv_timer_init(loop, &timer_);
    if (rc < 0) return rc;
    timer_.data = this;
    open_handles_++;
    rc = uv_poll_start(&poll_, UV_WRITABLE, OnWritable);
    if (rc < 0) return rc;
    // The loop's cached time dates from the start of this iteration, which
    // may be long ago (module loading, a slow JS stretch): count from now.
    uv_update_time(loop);
    return uv_timer_start(&timer_, OnTimeout, timeout_ms, 0);
  }

  // Used only when Start() failed: closes whatever was opened; the promise
  // is rejected once libuv has released the handles.
  void Abort(int uv_err) { Finish(uv_err, "uv_poll_start"); }

  // Start() failed before any handle existed: drop this object and its fd.
  void Discard() { delete this; }

  // Handles were opened, so settling happens from a libuv close callback.
  bool HasHandles() const { return open_handles_ > 0; }

 private:
  ~PendingConnect() {
    if (!env_gone_) {
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
      delete context_;
    }
  }

  static void OnWritable(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<PendingConnect*>(handle->data);
    Failure f;
    int rc = connect_result(self->fd_.get(), &f);
    if (rc == -EINPROGRESS && status >= 0) return;
    if (rc == 0 && status < 0) rc = status;
    self->Finish(rc, rc < 0 && f.syscall != nullptr ? f.syscall : "connect");
  }

  // Timers run before the poll phase of an iteration, so a connect that
  // completed meanwhile is only visible through SO_ERROR/getpeername here.
  static void OnTimeout(uv_timer_t* handle) {
    auto* self = static_cast<PendingConnect*>(handle->data);
    Failure f;
    int rc = connect_result(self->fd_.get(), &f);
    if (rc == -EINPROGRESS) rc = -ETIMEDOUT;
    self->Finish(rc, rc < 0 && f.syscall != nullptr ? f.syscall : "connect");
  }

  static void OnClosed(uv_handle_t* handle) {
    auto* self = static_cast<PendingConnect*>(handle->data);
    if (--self->open_handles_ == 0) self->Settle();
  }

  // The environment is going away (worker exit, process teardown): no JS
  // can run any more, so just release the handles and the fd.
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<PendingConnect*>(arg);
    self->env_gone_ = true;
    self->Finish(-ECANCELED, "connect");
  }

  // Stops polling and closes both handles; the promise is settled only in
  // Settle(), after libuv has released the fd's watcher, so JS can wrap the
  // fd in a net.Socket at once.
  void Finish(int rc, const char* syscall) {
    if (finished_) return;
    finished_ = true;
    result_ = rc;
    syscall_ = syscall;
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(&poll_))) uv_poll_stop(&poll_);
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) uv_timer_stop(&timer_);
    int to_close = open_handles_;
    if (to_close >= 1) uv_close(reinterpret_cast<uv_handle_t*>(&poll_), OnClosed);
    if (to_close >= 2) uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClosed);
  }

  void Settle() {
    if (!env_gone_) {
      try {
        Napi::HandleScope scope(env_);
        // A callback scope makes Node drain the microtask queue afterwards,
        // so .then() handlers run now rather than at some later callback.
        Napi::CallbackScope callback_scope(env_, *context_);
        if (result_ == 0) {
          // JS owns the fd only once the promise really resolved; if
          // Resolve throws, the fd is still ours and closed below.
          deferred_.Resolve(Napi::Number::New(env_, fd_.get()));
          fd_.release();
        } else {
          fd_.reset(-1);
          deferred_.Reject(ErrnoError(env_, -result_, syscall_, nullptr).Value());
        }
      } catch (const Napi::Error&) {
        // Nothing can be reported from inside a libuv callback (JS cannot
        // run, e.g. a worker being terminated): the fd, if still ours, is
        // closed below and the promise stays pending.
      }
    }
    delete this;
  }

  Napi::Env env_;
  Napi::Promise::Deferred deferred_;
  Napi::AsyncContext* context_;
  uv_poll_t poll_ = {};
  uv_timer_t timer_ = {};
  UniqueFd fd_;
  int open_handles_ = 0;
  int result_ = 0;
  const char* syscall_ = "connect";
  bool finished_ = false;
  bool env_gone_ = false;
};

}  // namespace

Napi::Value ConnectAo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object obj = ObjectArg(info, 0, "options");
  ConnectSpec spec;
  spec.remote = AddressProp(obj, "host", "host");
  spec.port = static_cast<uint16_t>(IntegerProp(obj, "port", "port", 1, kMaxPort, true, 0));
  if (!obj.Get("localAddress").IsUndefined()) {
    spec.has_local = true;
    spec.local = AddressProp(obj, "localAddress", "localAddress");
    if (spec.local.family != spec.remote.family) {
      throw InvalidArgument(env, "localAddress", "localAddress must be of the same address family as host");
    }
  }
  auto timeout_ms = static_cast<uint32_t>(IntegerProp(obj, "timeoutMs", "timeoutMs", 1, INT32_MAX, true, 0));
  std::vector<KeySpec> keys;
  ParseKeys(obj, "keys", &keys);

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "connect: no libuv event loop for this environment");
  }

  Failure f;
  int raw_fd = -1;
  bool in_progress = false;
  int rc = connect_start(spec, keys, &raw_fd, &in_progress, &f);
  if (rc != 0) throw FailureError(env, rc, f);
  // Owned here until handed over, so a throw below closes it.
  UniqueFd fd(raw_fd);

  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  if (!in_progress) {
    deferred.Resolve(Napi::Number::New(env, fd.get()));
    fd.release();
    return deferred.Promise();
  }
  auto* pending = new PendingConnect(env, deferred, &fd);
  rc = pending->Start(loop, timeout_ms);
  if (rc < 0) {
    if (!pending->HasHandles()) {
      pending->Discard();
      throw ErrnoError(env, -rc, "uv_poll_init_socket", nullptr);
    }
    pending->Abort(rc);
  }
  return deferred.Promise();
}

}  // namespace tcpao
