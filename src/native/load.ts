// The only module that loads build/Release/tcpao.node.
import * as path from 'node:path';

import { TcpAoError } from '../errors.js';
import type { NativeAddon, NativeRelayAddon } from './types.js';

const ADDON_FUNCTIONS: readonly (keyof NativeAddon)[] = [
  'layout',
  'probe',
  'openSocket',
  'closeFd',
  'addKey',
  'deleteKey',
  'getKeys',
  'getInfo',
  'setKeepalive',
  'setInfo',
  'createListener',
  'connect',
  'hardenProcess',
  'takeEnv',
];

export const ADDON_PATH = path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'tcpao.node');

const RELAY_FUNCTIONS: readonly (keyof NativeRelayAddon)[] = ['relayInit', 'relayAdd', 'relayAbort', 'relayBytes', 'relayRelease', 'relayStats'];

function exportsAll(value: unknown, names: readonly string[]): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return names.every((name) => typeof Reflect.get(value, name) === 'function');
}

function isNativeAddon(value: unknown): value is NativeAddon {
  return exportsAll(value, ADDON_FUNCTIONS);
}

function isRelayAddon(value: unknown): value is NativeRelayAddon {
  return exportsAll(value, RELAY_FUNCTIONS);
}

/** The native relay's functions of tcpao.node; ERR_TCPAO_ADDON_MISSING when an older build lacks them. */
export function loadRelayAddon(file: string = ADDON_PATH): NativeRelayAddon {
  const addon: unknown = loadAddon(file);
  if (!isRelayAddon(addon)) {
    throw new TcpAoError('ERR_TCPAO_ADDON_MISSING', `${file} has no native relay: rebuild it with npm run build:native`);
  }
  return addon;
}

/** Loads tcpao.node; ERR_TCPAO_ADDON_MISSING when it is absent or not ours. */
export function loadAddon(file: string = ADDON_PATH): NativeAddon {
  let loaded: unknown;
  try {
    loaded = require(file);
  } catch (err) {
    throw new TcpAoError(
      'ERR_TCPAO_ADDON_MISSING',
      `the native addon ${file} cannot be loaded: run npm install (needs python3, make, g++)`,
      { cause: err },
    );
  }
  if (!isNativeAddon(loaded)) {
    throw new TcpAoError(
      'ERR_TCPAO_ADDON_MISSING',
      `${file} does not export the TCP-AO functions: rebuild it with npm install (needs python3, make, g++)`,
    );
  }
  return loaded;
}
