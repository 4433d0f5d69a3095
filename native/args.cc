#include "args.h"

#include <math.h>
#include <string.h>
#include <sys/socket.h>

#include <climits>
#include <string>
#include <vector>

#include "js_errors.h"
#include "tcp_ao_limits.h"

namespace tcpao {
namespace {

constexpr const char* kAlgorithms[] = {"hmac(sha1)", "hmac(sha256)", "cmac(aes128)"};

bool HostBitsClear(const Peer& p) {
  size_t bytes = p.family == AF_INET ? 4 : 16;
  for (size_t bit = p.prefix; bit < bytes * 8; bit++) {
    if (p.addr[bit / 8] & (0x80 >> (bit % 8))) return false;
  }
  return true;
}

// Copies a Uint8Array (or Buffer) of 1..kMaxKeyLen bytes into @dst.
uint8_t CopyKeyBytes(Napi::Value value, const std::string& what, uint8_t* dst) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw InvalidArgument(env, what, what + " must be a Uint8Array");
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  size_t len = bytes.ElementLength();
  if (len < 1 || len > kMaxKeyLen) {
    throw InvalidArgument(
        env, what, what + " must be 1 to " + std::to_string(kMaxKeyLen) + " bytes long, got " + std::to_string(len));
  }
  memcpy(dst, bytes.Data(), len);
  return static_cast<uint8_t>(len);
}

}  // namespace

int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Env env = info.Env();
  Napi::Value v = info[index];
  const std::string message = std::string(name) + " must be a non-negative integer";
  if (!v.IsNumber()) throw InvalidArgument(env, name, message);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!isfinite(d) || d != floor(d) || d < 0 || d > INT_MAX) {
    throw InvalidArgument(env, name, message);
  }
  return static_cast<int>(d);
}

Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsObject()) throw InvalidArgument(info.Env(), name, std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}

double IntegerProp(Napi::Object obj, const char* prop, const std::string& what, double lo, double hi, bool required,
                   double fallback) {
  Napi::Env env = obj.Env();
  Napi::Value v = obj.Get(prop);
  if (v.IsUndefined() && !required) return fallback;
  std::string range = std::to_string(static_cast<long long>(lo)) + ".." + std::to_string(static_cast<long long>(hi));
  if (!v.IsNumber()) throw InvalidArgument(env, what, what + " must be an integer in " + range);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!isfinite(d) || d != floor(d) || d < lo || d > hi) {
    throw InvalidArgument(env, what, what + " must be an integer in " + range);
  }
  return d;
}

bool BoolProp(Napi::Object obj, const char* prop, const std::string& what) {
  Napi::Value v = obj.Get(prop);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) throw InvalidArgument(obj.Env(), what, what + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

bool OptionalKeyIdProp(Napi::Object obj, const char* prop, const std::string& what, uint8_t* out) {
  if (obj.Get(prop).IsUndefined()) return false;
  *out = static_cast<uint8_t>(IntegerProp(obj, prop, what, 0, kMaxKeyId, true, 0));
  return true;
}

Peer AddressProp(Napi::Object obj, const char* prop, const std::string& what) {
  Napi::Env env = obj.Env();
  Napi::Value v = obj.Get(prop);
  if (!v.IsString()) throw InvalidArgument(env, what, what + " must be an IPv4 or IPv6 address");
  std::string text = v.As<Napi::String>().Utf8Value();
  Peer p;
  if (text.size() > 64 || parse_ip(text.c_str(), &p) < 0) {
    throw InvalidArgument(env, what, what + " must be an IPv4 or IPv6 address");
  }
  return p;
}

Peer PeerWithPrefix(Napi::Object obj, const std::string& what) {
  Peer p = AddressProp(obj, "peer", what + ".peer");
  double max = p.family == AF_INET ? 32 : 128;
  p.prefix = static_cast<uint8_t>(IntegerProp(obj, "prefixLength", what + ".prefixLength", 0, max, false, max));
  if (!HostBitsClear(p)) {
    throw InvalidArgument(obj.Env(), what + ".prefixLength",
                          what + ".peer has bits set beyond " + what + ".prefixLength");
  }
  return p;
}

void ParseKey(Napi::Value value, const std::string& what, KeySpec* out) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw InvalidArgument(env, what, what + " must be an object");
  Napi::Object obj = value.As<Napi::Object>();
  out->peer = PeerWithPrefix(obj, what);
  out->sndid = static_cast<uint8_t>(IntegerProp(obj, "sendId", what + ".sendId", 0, kMaxKeyId, true, 0));
  out->rcvid = static_cast<uint8_t>(IntegerProp(obj, "recvId", what + ".recvId", 0, kMaxKeyId, true, 0));
  out->maclen = static_cast<uint8_t>(IntegerProp(obj, "maclen", what + ".maclen", 0, kMaxMaclen, false, 0));
  out->ifindex = static_cast<int32_t>(IntegerProp(obj, "ifindex", what + ".ifindex", 0, kMaxIfindex, false, 0));
  out->exclude_options = BoolProp(obj, "excludeOptions", what + ".excludeOptions");
  out->set_current = BoolProp(obj, "setCurrent", what + ".setCurrent");
  out->set_rnext = BoolProp(obj, "setRnext", what + ".setRnext");

  Napi::Value alg = obj.Get("algorithm");
  std::string name = alg.IsString() ? alg.As<Napi::String>().Utf8Value() : "";
  bool known = false;
  for (const char* allowed : kAlgorithms) known = known || name == allowed;
  if (!known) {
    throw InvalidArgument(env, what + ".algorithm",
                          what + ".algorithm must be one of hmac(sha1), hmac(sha256), cmac(aes128)");
  }
  memcpy(out->alg_name, name.c_str(), name.size() + 1);

  out->keylen = CopyKeyBytes(obj.Get("key"), what + ".key", out->key);
  // cmac(aes128) keys that are not 16 bytes go through the RFC 5926 KDF in
  // the kernel; the caller supplies the derived 16 bytes to compare against.
  if (name == "cmac(aes128)" && out->keylen != 16) {
    out->expect_keylen = CopyKeyBytes(obj.Get("kernelKey"), what + ".kernelKey", out->expect_key);
    if (out->expect_keylen != 16) {
      throw InvalidArgument(env, what + ".kernelKey", what + ".kernelKey must be the 16-byte KDF output");
    }
  } else {
    memcpy(out->expect_key, out->key, out->keylen);
    out->expect_keylen = out->keylen;
  }
}

void ParseKeys(Napi::Object obj, const char* prop, std::vector<KeySpec>* out) {
  Napi::Env env = obj.Env();
  Napi::Value v = obj.Get(prop);
  if (!v.IsArray()) throw InvalidArgument(env, prop, std::string(prop) + " must be an array of keys");
  Napi::Array keys = v.As<Napi::Array>();
  uint32_t n = keys.Length();
  if (n == 0) {
    throw InvalidArgument(env, prop, std::string(prop) + " must hold at least one key: without keys it is plain TCP");
  }
  if (n > kMaxKeysPerCall) throw InvalidArgument(env, prop, std::string(prop) + " holds too many keys");
  out->clear();
  out->reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    out->emplace_back();
    ParseKey(keys.Get(i), std::string(prop) + "[" + std::to_string(i) + "]", &out->back());
  }
}

}  // namespace tcpao
