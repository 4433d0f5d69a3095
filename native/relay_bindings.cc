// Glue for the native relay: argument checks, the fd hand-off, the
// thread-safe function that brings each end back to the JS thread, and the
// fds of ended connections, which stay open until JS releases them (key
// rotation may still call setsockopt on the wire fd until then).
#include "relay_bindings.h"

#include <napi.h>
#include <stdint.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "args.h"
#include "js_errors.h"
#include "relay.h"

namespace tcpao {
namespace {

struct Entry {
  int client_fd = -1;
  int upstream_fd = -1;
  std::shared_ptr<RelayCounters> counters;
  bool ended = false;
  bool reset = false;
};

struct RelayState;
void CallJs(Napi::Env env, Napi::Function on_end, RelayState* state, RelayEnd* end);
using EndFn = Napi::TypedThreadSafeFunction<RelayState, RelayEnd, CallJs>;

// Per environment; touched only on the JS thread (the loop thread only
// calls tsfn.NonBlockingCall()).
struct RelayState {
  RelayState(napi_env e, bool splice) : env(e), loop([this](const RelayEnd& end) { OnEnd(end); }, splice) {}

  void OnEnd(const RelayEnd& end) {
    auto* copy = new RelayEnd(end);
    if (tsfn.NonBlockingCall(copy) != napi_ok) delete copy;
  }

  void Live(int delta) {
    size_t before = live;
    live += delta;
    // Relays keep the process alive like the sockets they replaced.
    if (before == 0 && live > 0) tsfn.Ref(Napi::Env(env));
    if (before > 0 && live == 0) tsfn.Unref(Napi::Env(env));
  }

  static void Cleanup(void* arg) {
    auto* self = static_cast<RelayState*>(arg);
    self->loop.Stop();
    for (auto& [id, e] : self->entries) relay_release_fds(e.client_fd, e.upstream_fd, false);
    delete self;
  }

  napi_env env;
  RelayLoop loop;
  EndFn tsfn;
  std::unordered_map<uint64_t, Entry> entries;
  uint64_t next_id = 1;
  size_t live = 0;
};

const char* const kKindNames[] = {"closed", "idle_timeout", "client_error", "upstream_error", "aborted"};

void CallJs(Napi::Env env, Napi::Function on_end, RelayState* state, RelayEnd* end) {
  std::unique_ptr<RelayEnd> owned(end);
  // env is null while the environment is torn down: only free the data.
  if (env == nullptr || on_end.IsEmpty() || state == nullptr) return;
  auto it = state->entries.find(end->id);
  if (it == state->entries.end() || it->second.ended) return;
  Entry& e = it->second;
  e.ended = true;
  e.reset = end->reset;
  state->Live(-1);
  Napi::Value error = env.Undefined();
  if (end->err != 0) error = ErrnoError(env, end->err, end->syscall, nullptr).Value();
  const auto kind = static_cast<unsigned>(end->kind);
  // A throw from onEnd stays a JS exception; Node reports it as uncaught.
  on_end.Call({Napi::Number::New(env, static_cast<double>(end->id)),
               Napi::String::New(env, kind < 5 ? kKindNames[kind] : "closed"),
               Napi::Number::New(env, static_cast<double>(e.counters->client_to_upstream.load())),
               Napi::Number::New(env, static_cast<double>(e.counters->upstream_to_client.load())), error});
}

// The state is freed by its cleanup hook (after the loop thread is joined),
// not by the instance-data finalizer.
void KeepState(Napi::Env, RelayState*) {}

RelayState* StateOf(Napi::Env env) { return env.GetInstanceData<RelayState>(); }

RelayState* RequireState(const Napi::CallbackInfo& info) {
  RelayState* state = StateOf(info.Env());
  if (state == nullptr) throw InvalidArgument(info.Env(), "relay", "relayInit() has not been called");
  return state;
}

// An optional Uint8Array of early bytes; undefined is none.
RelayEarlyBytes EarlyArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  RelayEarlyBytes early;
  if (info[i].IsUndefined()) return early;
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw InvalidArgument(info.Env(), name, std::string(name) + " must be a Uint8Array");
  }
  auto bytes = info[i].As<Napi::Uint8Array>();
  if (bytes.ByteLength() > kRelayEarlyMaxBytes) {
    throw InvalidArgument(info.Env(), name,
                          std::string(name) + " must be at most " + std::to_string(kRelayEarlyMaxBytes) + " bytes");
  }
  early.data = bytes.Data();
  early.len = bytes.ByteLength();
  return early;
}

Entry& EntryArg(const Napi::CallbackInfo& info, RelayState* state, uint64_t* id) {
  if (!info[0].IsNumber()) throw InvalidArgument(info.Env(), "id", "id must be a relay id");
  *id = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  auto it = state->entries.find(*id);
  if (it == state->entries.end()) throw InvalidArgument(info.Env(), "id", "no such relay (already released?)");
  return it->second;
}

}  // namespace

Napi::Value RelayInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw InvalidArgument(env, "onEnd", "onEnd must be a function");
  if (StateOf(env) != nullptr) throw InvalidArgument(env, "onEnd", "relayInit() was already called");
  bool splice = info[1].IsObject() && info[1].As<Napi::Object>().Get("splice").ToBoolean().Value();
  auto state = std::make_unique<RelayState>(env, splice);
  state->tsfn = EndFn::New(env, info[0].As<Napi::Function>(), "tcpao:relay", 0, 1, state.get());
  state->tsfn.Unref(env);
  int rc = state->loop.Start();
  if (rc < 0) {
    state->tsfn.Release();
    throw ErrnoError(env, -rc, "relay loop start", nullptr);
  }
  // Registered after the thread-safe function, so it runs before that one's
  // own cleanup: the loop thread is joined before the function goes away.
  napi_add_env_cleanup_hook(env, RelayState::Cleanup, state.get());
  env.SetInstanceData<RelayState, KeepState>(state.release());
  return env.Undefined();
}

Napi::Value RelayAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RelayState* state = RequireState(info);
  int client = FdArg(info, 0, "clientFd");
  int upstream = FdArg(info, 1, "upstreamFd");
  if (!info[2].IsNumber()) throw InvalidArgument(env, "idleMs", "idleMs must be a number");
  double idle = info[2].As<Napi::Number>().DoubleValue();
  if (!(idle >= 0 && idle <= 4294967295.0)) throw InvalidArgument(env, "idleMs", "idleMs must be 0 to 2^32-1");
  const RelayEarlyBytes early[2] = {EarlyArg(info, 3, "clientEarly"), EarlyArg(info, 4, "upstreamEarly")};

  UniqueFd c(relay_dup_fd(client));
  if (c.get() < 0) throw ErrnoError(env, -c.release(), "fcntl", "F_DUPFD_CLOEXEC");
  UniqueFd u(relay_dup_fd(upstream));
  if (u.get() < 0) throw ErrnoError(env, -u.release(), "fcntl", "F_DUPFD_CLOEXEC");
  auto counters = std::make_shared<RelayCounters>();
  uint64_t id = state->next_id++;
  int rc = state->loop.Add(id, c.get(), u.get(), static_cast<uint32_t>(idle), counters, early);
  if (rc < 0) throw ErrnoError(env, -rc, "relay add", nullptr);
  Entry e;
  e.client_fd = c.release();
  e.upstream_fd = u.release();
  e.counters = counters;
  state->entries.emplace(id, e);
  state->Live(1);
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, static_cast<double>(id)));
  out.Set("clientFd", Napi::Number::New(env, e.client_fd));
  out.Set("upstreamFd", Napi::Number::New(env, e.upstream_fd));
  return out;
}

Napi::Value RelayAbort(const Napi::CallbackInfo& info) {
  RelayState* state = RequireState(info);
  uint64_t id = 0;
  Entry& e = EntryArg(info, state, &id);
  if (!e.ended) state->loop.Abort(id);
  return info.Env().Undefined();
}

Napi::Value RelayBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RelayState* state = RequireState(info);
  uint64_t id = 0;
  Entry& e = EntryArg(info, state, &id);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(e.counters->client_to_upstream.load())));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(e.counters->upstream_to_client.load())));
  return out;
}

Napi::Value RelayStatsOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const RelayStats stats = RelayLoop::Stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("connections", Napi::Number::New(env, static_cast<double>(stats.connections)));
  out.Set("buffers", Napi::Number::New(env, static_cast<double>(stats.buffers)));
  out.Set("pipes", Napi::Number::New(env, static_cast<double>(stats.pipes)));
  return out;
}

Napi::Value RelayRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RelayState* state = RequireState(info);
  uint64_t id = 0;
  Entry& e = EntryArg(info, state, &id);
  if (!e.ended) throw InvalidArgument(env, "id", "the relay has not ended; abort it first");
  bool reset = e.reset || info[1].ToBoolean().Value();
  int rc = relay_release_fds(e.client_fd, e.upstream_fd, reset);
  state->entries.erase(id);
  if (rc < 0) throw ErrnoError(env, -rc, reset ? "setsockopt" : "close", reset ? "SO_LINGER" : nullptr);
  return env.Undefined();
}

}  // namespace tcpao
