/**
 * The typed boundary to the C++ addon, and the only module other code
 * imports from src/native/. load.ts is the only place that loads
 * build/Release/tcpao.node.
 */
export { addressBytes, checkAddress } from './args.js';
export { createBinding, defaultBinding, hardenProcess, nativeLayout, socketFd, takeEnvBytes } from './binding.js';
export { aesCmac, cmacKdfKey, secureBytes } from './cmac.js';
export { fromNativeError, UNSUPPORTED_REASON } from './errors.js';
export * from './limits.js';
export { ADDON_PATH, loadAddon, loadRelayAddon } from './load.js';
export { createRelayEngine, defaultRelayEngine, type NativeRelayEarlyBytes, type NativeRelayEnd, type NativeRelayEngine, type NativeRelayHandle, type RelayEngineOptions } from './relay.js';
export * from './types.js';
