#include "js_errors.h"

#include <errno.h>
#include <string.h>
#include <uv.h>

#include <string>

namespace tcpao {
namespace {

// glibc's strerror_r is the GNU variant under g++; this accepts either.
[[maybe_unused]] const char* PickMessage(int ret, const char* buf) { return ret == 0 ? buf : "Unknown error"; }
[[maybe_unused]] const char* PickMessage(const char* ret, const char*) { return ret; }

std::string ErrnoMessage(int err) {
  char buf[128] = {};
  return PickMessage(strerror_r(err, buf, sizeof(buf)), buf);
}

}  // namespace

std::string ErrnoName(int err) {
  char buf[64] = {};
  // uv_err_name_r does not allocate for errnos libuv has no name for
  // (EKEYREJECTED); glibc knows those.
  uv_err_name_r(uv_translate_sys_error(err), buf, sizeof(buf));
  if (strncmp(buf, "Unknown", 7) != 0) return buf;
  const char* glibc_name = strerrorname_np(err);
  return glibc_name != nullptr ? glibc_name : "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* option) {
  std::string call = syscall != nullptr ? syscall : "syscall";
  if (option != nullptr) call += std::string("(") + option + ")";
  Napi::Error error = Napi::Error::New(env, call + ": " + ErrnoMessage(err));
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall != nullptr ? syscall : "syscall"));
  if (option != nullptr) error.Set("option", Napi::String::New(env, option));
  return error;
}

Napi::Error InvalidArgument(Napi::Env env, const std::string& argument, const std::string& message) {
  Napi::Error error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "ERR_TCPAO_INVALID_ARGUMENT"));
  error.Set("argument", Napi::String::New(env, argument));
  return error;
}

Napi::Error FailureError(Napi::Env env, int rc, const Failure& f) {
  Napi::Error error = rc == kReadbackMismatch
                          ? Napi::Error::New(env, "TCP_AO_GET_KEYS read-back differs in: " + f.mismatch)
                          : ErrnoError(env, -rc, f.syscall, f.option);
  if (rc == kReadbackMismatch) {
    error.Set("code", Napi::String::New(env, "ERR_TCPAO_KEY_READBACK"));
    error.Set("fields", Napi::String::New(env, f.mismatch));
    if (f.unremoved_errno != 0) {
      error.Set("keyRemoved", Napi::Boolean::New(env, false));
      error.Set("removeCode", Napi::String::New(env, ErrnoName(f.unremoved_errno)));
      error.Set("shutDown", Napi::Boolean::New(env, true));
    } else {
      error.Set("keyRemoved", Napi::Boolean::New(env, true));
    }
  } else if (f.bad_fd) {
    error.Set("argument", Napi::String::New(env, "fd"));
  }
  if (f.key_index >= 0) error.Set("keyIndex", Napi::Number::New(env, static_cast<double>(f.key_index)));
  return error;
}

}  // namespace tcpao
