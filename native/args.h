// Defensive parsing of JS arguments into the helper structs. native.ts checks
// every shape first; these checks exist so a bad call can never crash the
// process or reach the kernel. Failures throw InvalidArgument (js_errors.h).
#ifndef NATIVE_ARGS_H_
#define NATIVE_ARGS_H_

#include <napi.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "tcp_ao.h"

namespace tcpao {

// @name is the argument's name in the error ("fd" unless a call takes two).
int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name = "fd");
Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* name);
double IntegerProp(Napi::Object obj, const char* prop, const std::string& what, double lo, double hi, bool required,
                   double fallback);
bool BoolProp(Napi::Object obj, const char* prop, const std::string& what);
// A key id (0-255) that may be absent: stores it and returns true when given.
bool OptionalKeyIdProp(Napi::Object obj, const char* prop, const std::string& what, uint8_t* out);
Peer AddressProp(Napi::Object obj, const char* prop, const std::string& what);
Peer PeerWithPrefix(Napi::Object obj, const std::string& what);
void ParseKey(Napi::Value value, const std::string& what, KeySpec* out);
void ParseKeys(Napi::Object obj, const char* prop, std::vector<KeySpec>* out);

}  // namespace tcpao

#endif  // NATIVE_ARGS_H_
