// The JS-facing functions of the native relay (relay_bindings.cc): the glue
// between RelayLoop (relay.h, no Napi) and src/native/relay.ts.
#ifndef NATIVE_RELAY_BINDINGS_H_
#define NATIVE_RELAY_BINDINGS_H_

#include <napi.h>

namespace tcpao {

// relayInit(onEnd, {splice}): sets the function the loop reports each ended
// connection to, onEnd(id, kind, clientToUpstream, upstreamToClient, error?),
// and starts the loop thread (bulk directions splice through a pipe when
// splice is true). Once per environment.
Napi::Value RelayInit(const Napi::CallbackInfo& info);
// relayAdd(clientFd, upstreamFd, idleMs, clientEarly?, upstreamEarly?):
// duplicates both fds (F_DUPFD_CLOEXEC) and relays the duplicates; returns
// {id, clientFd, upstreamFd} (the copies). The early Uint8Arrays are bytes
// already read from that leg, written to the other leg first. The caller then
// closes its own fds (destroys its sockets).
Napi::Value RelayAdd(const Napi::CallbackInfo& info);
// relayAbort(id): ends the connection; onEnd follows with kind 4.
Napi::Value RelayAbort(const Napi::CallbackInfo& info);
// relayBytes(id): [clientToUpstream, upstreamToClient] so far.
Napi::Value RelayBytes(const Napi::CallbackInfo& info);
// relayStats(): {connections, buffers, pipes} the relay holds process-wide.
Napi::Value RelayStatsOf(const Napi::CallbackInfo& info);
// relayRelease(id, reset): closes both fds of an ended connection (SO_LINGER 0
// first when the loop or @reset asks for a reset).
Napi::Value RelayRelease(const Napi::CallbackInfo& info);

}  // namespace tcpao

#endif  // NATIVE_RELAY_BINDINGS_H_
