// The one place that turns helper results (0 / -errno / kReadbackMismatch)
// into JS errors shaped like Node's ErrnoException.
#ifndef NATIVE_JS_ERRORS_H_
#define NATIVE_JS_ERRORS_H_

#include <napi.h>

#include <string>

#include "tcp_ao.h"

namespace tcpao {

// Error{message: "setsockopt(TCP_AO_ADD_KEY): <strerror>", code: "ENOPROTOOPT",
// errno: 92 (positive), syscall: "setsockopt", option: "TCP_AO_ADD_KEY"}.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const char* option);

// TypeError{code: "ERR_TCPAO_INVALID_ARGUMENT", argument} for a bad argument.
Napi::Error InvalidArgument(Napi::Env env, const std::string& argument, const std::string& message);

// The error for a failed helper: bad fd, read-back mismatch or errno.
Napi::Error FailureError(Napi::Env env, int rc, const Failure& f);

// The system error name for @err ("ENOPROTOOPT", "EKEYREJECTED").
std::string ErrnoName(int err);

}  // namespace tcpao

#endif  // NATIVE_JS_ERRORS_H_
