// tcpao.node: the exports table. One function per kernel operation; the
// functions live in bindings.cc and ao_connect.cc.
#include <napi.h>

#include "ao_connect.h"
#include "bindings.h"
#include "relay_bindings.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("layout", Napi::Function::New(env, tcpao::Layout, "layout"));
  exports.Set("probe", Napi::Function::New(env, tcpao::Probe, "probe"));
  exports.Set("openSocket", Napi::Function::New(env, tcpao::OpenSocket, "openSocket"));
  exports.Set("closeFd", Napi::Function::New(env, tcpao::CloseFd, "closeFd"));
  exports.Set("addKey", Napi::Function::New(env, tcpao::AddKey, "addKey"));
  exports.Set("deleteKey", Napi::Function::New(env, tcpao::DeleteKey, "deleteKey"));
  exports.Set("getKeys", Napi::Function::New(env, tcpao::GetKeys, "getKeys"));
  exports.Set("getInfo", Napi::Function::New(env, tcpao::GetInfo, "getInfo"));
  exports.Set("setInfo", Napi::Function::New(env, tcpao::SetInfo, "setInfo"));
  exports.Set("createListener", Napi::Function::New(env, tcpao::CreateListener, "createListener"));
  exports.Set("connect", Napi::Function::New(env, tcpao::ConnectAo, "connect"));
  exports.Set("setKeepalive", Napi::Function::New(env, tcpao::SetKeepalive, "setKeepalive"));
  exports.Set("hardenProcess", Napi::Function::New(env, tcpao::HardenProcess, "hardenProcess"));
  exports.Set("takeEnv", Napi::Function::New(env, tcpao::TakeEnv, "takeEnv"));
  exports.Set("relayInit", Napi::Function::New(env, tcpao::RelayInit, "relayInit"));
  exports.Set("relayAdd", Napi::Function::New(env, tcpao::RelayAdd, "relayAdd"));
  exports.Set("relayAbort", Napi::Function::New(env, tcpao::RelayAbort, "relayAbort"));
  exports.Set("relayBytes", Napi::Function::New(env, tcpao::RelayBytes, "relayBytes"));
  exports.Set("relayRelease", Napi::Function::New(env, tcpao::RelayRelease, "relayRelease"));
  exports.Set("relayStats", Napi::Function::New(env, tcpao::RelayStatsOf, "relayStats"));
  return exports;
}

}  // namespace

NODE_API_MODULE(tcpao, Init)
