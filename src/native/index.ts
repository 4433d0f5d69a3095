/**
 * The typed boundary to the C++ addon, and the only module other code
 * imports from src/native/. load.ts is the only place that loads
 * build/Release/tcpao.node.
 */
export { addressBytes, checkAddress } from './args';
export { createBinding, defaultBinding, hardenProcess, nativeLayout, socketFd, takeEnvBytes } from './binding';
export { aesCmac, cmacKdfKey, secureBytes } from './cmac';
export { fromNativeError, UNSUPPORTED_REASON } from './errors';
export * from './limits';
export { ADDON_PATH, loadAddon } from './load';
export * from './types';
