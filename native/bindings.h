// The synchronous JS-facing functions of tcpao.node (bindings.cc).
#ifndef NATIVE_BINDINGS_H_
#define NATIVE_BINDINGS_H_

#include <napi.h>

namespace tcpao {

Napi::Value Layout(const Napi::CallbackInfo& info);
Napi::Value Probe(const Napi::CallbackInfo& info);
Napi::Value OpenSocket(const Napi::CallbackInfo& info);
Napi::Value CloseFd(const Napi::CallbackInfo& info);
Napi::Value AddKey(const Napi::CallbackInfo& info);
Napi::Value DeleteKey(const Napi::CallbackInfo& info);
Napi::Value GetKeys(const Napi::CallbackInfo& info);
Napi::Value GetInfo(const Napi::CallbackInfo& info);
Napi::Value SetInfo(const Napi::CallbackInfo& info);
Napi::Value CreateListener(const Napi::CallbackInfo& info);
Napi::Value SetKeepalive(const Napi::CallbackInfo& info);
Napi::Value HardenProcess(const Napi::CallbackInfo& info);
Napi::Value TakeEnv(const Napi::CallbackInfo& info);

}  // namespace tcpao

#endif  // NATIVE_BINDINGS_H_
