// connect(options): the asynchronous TCP-AO connect.
#ifndef NATIVE_AO_CONNECT_H_
#define NATIVE_AO_CONNECT_H_

#include <napi.h>

namespace tcpao {

// Returns a Promise of the connected fd. Keys and ao_required are installed
// before connect(); completion is awaited with uv_poll (writability) and a
// uv_timer, never by blocking the event loop.
Napi::Value ConnectAo(const Napi::CallbackInfo& info);

}  // namespace tcpao

#endif  // NATIVE_AO_CONNECT_H_
