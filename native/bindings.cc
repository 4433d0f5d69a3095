// The JS-facing functions of tcpao.node: parse arguments (args.h), call one
// helper (tcp_ao.h), turn the result into a value or a JS error (js_errors.h).
#include "bindings.h"

#include <napi.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "args.h"
#include "js_errors.h"
#include "tcp_ao.h"
#include "tcp_ao_limits.h"
#include "uapi_tcp_ao.h"

namespace tcpao {
namespace {

// Where a one-bit field lands: the byte offset and the bit mask within it.
// Measured by setting the bit in a zeroed struct, so it is the compiler's
// real bitfield layout, which must equal the kernel's.
template <typename Struct, typename Setter>
Napi::Object BitPosition(Napi::Env env, Setter set) {
  Struct s = {};
  set(&s);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&s);
  Napi::Object pos = Napi::Object::New(env);
  for (size_t i = 0; i < sizeof(s); i++) {
    if (bytes[i] != 0) {
      pos.Set("byte", Napi::Number::New(env, static_cast<double>(i)));
      pos.Set("mask", Napi::Number::New(env, bytes[i]));
      return pos;
    }
  }
  return pos;
}

Napi::Object Field(Napi::Env env, size_t offset, size_t size) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("offset", Napi::Number::New(env, static_cast<double>(offset)));
  f.Set("size", Napi::Number::New(env, static_cast<double>(size)));
  return f;
}

// `type` is a type name, which cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define FIELD(obj, type, member) \
  (obj).Set(#member, Field(env, offsetof(type, member), sizeof(reinterpret_cast<type*>(0)->member)))
#define BIT(obj, type, member) (obj).Set(#member, BitPosition<type>(env, [](type* s) { s->member = 1; }))
// NOLINTEND(bugprone-macro-parentheses)

Napi::Object StructLayout(Napi::Env env, size_t size, Napi::Object fields, Napi::Object bits) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", Napi::Number::New(env, static_cast<double>(size)));
  o.Set("fields", fields);
  o.Set("bits", bits);
  return o;
}

}  // namespace

// layout(): sizeof/offsetof of every field the addon fills, for the layout test.
Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);

  Napi::Object add = Napi::Object::New(env), add_bits = Napi::Object::New(env);
  FIELD(add, tcp_ao_add_ext, addr);
  FIELD(add, tcp_ao_add_ext, alg_name);
  FIELD(add, tcp_ao_add_ext, ifindex);
  FIELD(add, tcp_ao_add_ext, reserved2);
  FIELD(add, tcp_ao_add_ext, prefix);
  FIELD(add, tcp_ao_add_ext, sndid);
  FIELD(add, tcp_ao_add_ext, rcvid);
  FIELD(add, tcp_ao_add_ext, maclen);
  FIELD(add, tcp_ao_add_ext, keyflags);
  FIELD(add, tcp_ao_add_ext, keylen);
  FIELD(add, tcp_ao_add_ext, key);
  BIT(add_bits, tcp_ao_add_ext, set_current);
  BIT(add_bits, tcp_ao_add_ext, set_rnext);
  out.Set("tcp_ao_add", StructLayout(env, sizeof(tcp_ao_add_ext), add, add_bits));

  Napi::Object del = Napi::Object::New(env), del_bits = Napi::Object::New(env);
  FIELD(del, tcp_ao_del_ext, addr);
  FIELD(del, tcp_ao_del_ext, ifindex);
  FIELD(del, tcp_ao_del_ext, reserved2);
  FIELD(del, tcp_ao_del_ext, prefix);
  FIELD(del, tcp_ao_del_ext, sndid);
  FIELD(del, tcp_ao_del_ext, rcvid);
  FIELD(del, tcp_ao_del_ext, current_key);
  FIELD(del, tcp_ao_del_ext, rnext);
  FIELD(del, tcp_ao_del_ext, keyflags);
  BIT(del_bits, tcp_ao_del_ext, set_current);
  BIT(del_bits, tcp_ao_del_ext, set_rnext);
  BIT(del_bits, tcp_ao_del_ext, del_async);
  out.Set("tcp_ao_del", StructLayout(env, sizeof(tcp_ao_del_ext), del, del_bits));

  Napi::Object inf = Napi::Object::New(env), inf_bits = Napi::Object::New(env);
  FIELD(inf, tcp_ao_info_opt_ext, reserved2);
  FIELD(inf, tcp_ao_info_opt_ext, current_key);
  FIELD(inf, tcp_ao_info_opt_ext, rnext);
  FIELD(inf, tcp_ao_info_opt_ext, pkt_good);
  FIELD(inf, tcp_ao_info_opt_ext, pkt_bad);
  FIELD(inf, tcp_ao_info_opt_ext, pkt_key_not_found);
  FIELD(inf, tcp_ao_info_opt_ext, pkt_ao_required);
  FIELD(inf, tcp_ao_info_opt_ext, pkt_dropped_icmp);
  BIT(inf_bits, tcp_ao_info_opt_ext, set_current);
  BIT(inf_bits, tcp_ao_info_opt_ext, set_rnext);
  BIT(inf_bits, tcp_ao_info_opt_ext, ao_required);
  BIT(inf_bits, tcp_ao_info_opt_ext, set_counters);
  BIT(inf_bits, tcp_ao_info_opt_ext, accept_icmps);
  out.Set("tcp_ao_info_opt", StructLayout(env, sizeof(tcp_ao_info_opt_ext), inf, inf_bits));

  Napi::Object get = Napi::Object::New(env), get_bits = Napi::Object::New(env);
  FIELD(get, tcp_ao_getsockopt_ext, addr);
  FIELD(get, tcp_ao_getsockopt_ext, alg_name);
  FIELD(get, tcp_ao_getsockopt_ext, key);
  FIELD(get, tcp_ao_getsockopt_ext, nkeys);
  FIELD(get, tcp_ao_getsockopt_ext, sndid);
  FIELD(get, tcp_ao_getsockopt_ext, rcvid);
  FIELD(get, tcp_ao_getsockopt_ext, prefix);
  FIELD(get, tcp_ao_getsockopt_ext, maclen);
  FIELD(get, tcp_ao_getsockopt_ext, keyflags);
  FIELD(get, tcp_ao_getsockopt_ext, keylen);
  FIELD(get, tcp_ao_getsockopt_ext, ifindex);
  FIELD(get, tcp_ao_getsockopt_ext, pkt_good);
  FIELD(get, tcp_ao_getsockopt_ext, pkt_bad);
  BIT(get_bits, tcp_ao_getsockopt_ext, is_current);
  BIT(get_bits, tcp_ao_getsockopt_ext, is_rnext);
  BIT(get_bits, tcp_ao_getsockopt_ext, get_all);
  out.Set("tcp_ao_getsockopt", StructLayout(env, sizeof(tcp_ao_getsockopt_ext), get, get_bits));

  Napi::Object constants = Napi::Object::New(env);
  constants.Set("TCP_AO_ADD_KEY", Napi::Number::New(env, TCP_AO_ADD_KEY));
  constants.Set("TCP_AO_DEL_KEY", Napi::Number::New(env, TCP_AO_DEL_KEY));
  constants.Set("TCP_AO_INFO", Napi::Number::New(env, TCP_AO_INFO));
  constants.Set("TCP_AO_GET_KEYS", Napi::Number::New(env, TCP_AO_GET_KEYS));
  constants.Set("TCP_AO_MAXKEYLEN", Napi::Number::New(env, TCP_AO_MAXKEYLEN));
  constants.Set("TCP_AO_KEYF_IFINDEX", Napi::Number::New(env, TCP_AO_KEYF_IFINDEX));
  constants.Set("TCP_AO_KEYF_EXCLUDE_OPT", Napi::Number::New(env, TCP_AO_KEYF_EXCLUDE_OPT));
  constants.Set("sockaddr_storage", Napi::Number::New(env, sizeof(struct sockaddr_storage)));
  out.Set("constants", constants);

  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxKeyLen", Napi::Number::New(env, kMaxKeyLen));
  limits.Set("defaultMaclen", Napi::Number::New(env, kDefaultMaclen));
  limits.Set("maxMaclen", Napi::Number::New(env, kMaxMaclen));
  limits.Set("maxKeysPerCall", Napi::Number::New(env, kMaxKeysPerCall));
  limits.Set("maxKeyId", Napi::Number::New(env, kMaxKeyId));
  limits.Set("maxKeepaliveSecs", Napi::Number::New(env, kMaxKeepaliveSecs));
  limits.Set("maxKeepaliveProbes", Napi::Number::New(env, kMaxKeepaliveProbes));
  limits.Set("maxIfindex", Napi::Number::New(env, kMaxIfindex));
  limits.Set("relayEarlyMaxBytes", Napi::Number::New(env, static_cast<double>(kRelayEarlyMaxBytes)));
  limits.Set("maxPort", Napi::Number::New(env, kMaxPort));
  limits.Set("maxBacklog", Napi::Number::New(env, kMaxBacklog));
  out.Set("limits", limits);
  return out;
}

#undef FIELD
#undef BIT

// probe(): {errno, code} of getsockopt(TCP_AO_INFO) on a fresh socket (errno 0: it succeeded).
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Failure f;
  int rc = probe(&f);
  if (rc < 0 && strcmp(f.syscall, "socket") == 0) throw FailureError(env, rc, f);
  Napi::Object out = Napi::Object::New(env);
  out.Set("errno", Napi::Number::New(env, -rc));
  out.Set("code", Napi::String::New(env, rc < 0 ? ErrnoName(-rc) : ""));
  return out;
}

// openSocket(family: 4 | 6): a non-blocking, close-on-exec TCP socket fd.
Napi::Value OpenSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = info[0];
  double family = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
  if (family != 4 && family != 6) throw InvalidArgument(env, "family", "family must be 4 or 6");
  Failure f;
  int fd = -1;
  int rc = open_tcp_socket(family == 4 ? AF_INET : AF_INET6, &fd, &f);
  if (rc < 0) throw FailureError(env, rc, f);
  return Napi::Number::New(env, fd);
}

// closeFd(fd)
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  Failure f;
  int rc = close_fd(fd, &f);
  if (rc < 0) {
    f.bad_fd = rc == -EBADF;
    throw FailureError(env, rc, f);
  }
  return env.Undefined();
}

// setKeepalive(fd, idleSecs, intervalSecs, probes): TCP keepalive with all three knobs.
Napi::Value SetKeepalive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  Napi::Object opts = ObjectArg(info, 1, "keepalive");
  int idle = static_cast<int>(IntegerProp(opts, "idleSecs", "keepalive.idleSecs", 1, kMaxKeepaliveSecs, true, 0));
  int interval =
      static_cast<int>(IntegerProp(opts, "intervalSecs", "keepalive.intervalSecs", 1, kMaxKeepaliveSecs, true, 0));
  int probes = static_cast<int>(IntegerProp(opts, "probes", "keepalive.probes", 1, kMaxKeepaliveProbes, true, 0));
  Failure f;
  int rc = set_keepalive(fd, idle, interval, probes, &f);
  if (rc < 0) throw FailureError(env, rc, f);
  return env.Undefined();
}

// addKey(fd, key): TCP_AO_ADD_KEY with read-back.
Napi::Value AddKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  KeySpec key;
  ParseKey(info[1], "key", &key);
  Failure f;
  int rc = add_key(fd, key, &f);
  if (rc != 0) throw FailureError(env, rc, f);
  return env.Undefined();
}

// deleteKey(fd, ref): TCP_AO_DEL_KEY, then checks the key is gone.
Napi::Value DeleteKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  Napi::Object obj = ObjectArg(info, 1, "ref");
  KeyRef ref;
  ref.peer = PeerWithPrefix(obj, "ref");
  ref.sndid = static_cast<uint8_t>(IntegerProp(obj, "sendId", "ref.sendId", 0, kMaxKeyId, true, 0));
  ref.rcvid = static_cast<uint8_t>(IntegerProp(obj, "recvId", "ref.recvId", 0, kMaxKeyId, true, 0));
  ref.ifindex = static_cast<int32_t>(IntegerProp(obj, "ifindex", "ref.ifindex", 0, kMaxIfindex, false, 0));
  ref.set_current = OptionalKeyIdProp(obj, "newCurrent", "ref.newCurrent", &ref.current_key);
  ref.set_rnext = OptionalKeyIdProp(obj, "newRnext", "ref.newRnext", &ref.rnext);
  Failure f;
  int rc = delete_key(fd, ref, &f);
  if (rc != 0) throw FailureError(env, rc, f);
  return env.Undefined();
}

// getKeys(fd): every key on the socket, without key bytes.
Napi::Value GetKeys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  std::vector<KeyInfo> keys;
  Failure f;
  int rc = get_keys(fd, &keys, &f);
  if (rc != 0) throw FailureError(env, rc, f);
  Napi::Array out = Napi::Array::New(env, keys.size());
  for (size_t i = 0; i < keys.size(); i++) {
    const KeyInfo& k = keys[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("peer", Napi::String::New(env, format_ip(k.peer)));
    o.Set("prefixLength", Napi::Number::New(env, k.peer.prefix));
    o.Set("sendId", Napi::Number::New(env, k.sndid));
    o.Set("recvId", Napi::Number::New(env, k.rcvid));
    o.Set("kernelAlgorithm", Napi::String::New(env, k.alg_name));
    o.Set("maclen", Napi::Number::New(env, k.maclen));
    o.Set("keyflags", Napi::Number::New(env, k.keyflags));
    o.Set("keylen", Napi::Number::New(env, k.keylen));
    o.Set("ifindex", Napi::Number::New(env, k.ifindex));
    o.Set("isCurrent", Napi::Boolean::New(env, k.is_current));
    o.Set("isRnext", Napi::Boolean::New(env, k.is_rnext));
    o.Set("pktGood", Napi::BigInt::New(env, k.pkt_good));
    o.Set("pktBad", Napi::BigInt::New(env, k.pkt_bad));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// getInfo(fd): TCP_AO_INFO, counters as bigint.
Napi::Value GetInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  AoState s;
  Failure f;
  int rc = get_info(fd, &s, &f);
  if (rc != 0) throw FailureError(env, rc, f);
  Napi::Object o = Napi::Object::New(env);
  o.Set("aoRequired", Napi::Boolean::New(env, s.ao_required));
  o.Set("acceptIcmps", Napi::Boolean::New(env, s.accept_icmps));
  o.Set("hasCurrent", Napi::Boolean::New(env, s.has_current));
  o.Set("hasRnext", Napi::Boolean::New(env, s.has_rnext));
  o.Set("currentKey", Napi::Number::New(env, s.current_key));
  o.Set("rnextKey", Napi::Number::New(env, s.rnext));
  o.Set("pktGood", Napi::BigInt::New(env, s.pkt_good));
  o.Set("pktBad", Napi::BigInt::New(env, s.pkt_bad));
  o.Set("pktKeyNotFound", Napi::BigInt::New(env, s.pkt_key_not_found));
  o.Set("pktAoRequired", Napi::BigInt::New(env, s.pkt_ao_required));
  o.Set("pktDroppedIcmp", Napi::BigInt::New(env, s.pkt_dropped_icmp));
  return o;
}

// setInfo(fd, update): changes only the given fields of TCP_AO_INFO.
Napi::Value SetInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  Napi::Object obj = ObjectArg(info, 1, "update");
  AoUpdate u;
  u.set_current = OptionalKeyIdProp(obj, "currentKey", "update.currentKey", &u.current_key);
  u.set_rnext = OptionalKeyIdProp(obj, "rnextKey", "update.rnextKey", &u.rnext);
  if (!obj.Get("aoRequired").IsUndefined()) u.ao_required = BoolProp(obj, "aoRequired", "update.aoRequired") ? 1 : 0;
  if (!obj.Get("acceptIcmps").IsUndefined()) {
    u.accept_icmps = BoolProp(obj, "acceptIcmps", "update.acceptIcmps") ? 1 : 0;
  }
  Failure f;
  int rc = set_info(fd, u, &f);
  if (rc != 0) throw FailureError(env, rc, f);
  return env.Undefined();
}

// hardenProcess(): not dumpable, no core files; {dumpable, coreSoft, coreHard} read back.
Napi::Value HardenProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ProcessGuard guard;
  Failure f;
  int rc = harden_process(&guard, &f);
  if (rc < 0) throw FailureError(env, rc, f);
  Napi::Object o = Napi::Object::New(env);
  o.Set("dumpable", Napi::Number::New(env, guard.dumpable));
  o.Set("coreSoft", Napi::BigInt::New(env, guard.core_soft));
  o.Set("coreHard", Napi::BigInt::New(env, guard.core_hard));
  return o;
}

// takeEnv(name): the variable's bytes in a new Uint8Array, or undefined when
// it is not set; the value is wiped from the environment and the variable
// removed, so it never becomes a JS string.
Napi::Value TakeEnv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value v = info[0];
  std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (name.empty() || name.size() > 255 || name.find('=') != std::string::npos) {
    throw InvalidArgument(env, "name", "name must be an environment variable name");
  }
  long len = env_value_length(name.c_str());
  if (len < 0) return env.Undefined();
  // An ArrayBuffer's bytes live outside the JS heap and never move, so
  // zeroing this one buffer later really removes the value.
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, static_cast<size_t>(len));
  int rc = take_env_value(name.c_str(), static_cast<uint8_t*>(buffer.Data()), static_cast<size_t>(len));
  if (rc < 0) throw ErrnoError(env, -rc, "getenv", nullptr);
  return Napi::Uint8Array::New(env, static_cast<size_t>(len), buffer, 0);
}

// createListener({host, port, backlog, keys}): a listening TCP-AO socket fd.
Napi::Value CreateListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object obj = ObjectArg(info, 0, "options");
  ListenSpec spec;
  spec.local = AddressProp(obj, "host", "host");
  spec.port = static_cast<uint16_t>(IntegerProp(obj, "port", "port", 0, kMaxPort, true, 0));
  spec.backlog = static_cast<int>(IntegerProp(obj, "backlog", "backlog", 1, kMaxBacklog, false, 511));
  std::vector<KeySpec> keys;
  ParseKeys(obj, "keys", &keys);
  Failure f;
  int fd = -1;
  int rc = create_listener(spec, keys, &fd, &f);
  if (rc != 0) throw FailureError(env, rc, f);
  return Napi::Number::New(env, fd);
}

}  // namespace tcpao
