/**
 * The binding over the addon: checks every argument (args.ts), calls the
 * addon, and turns its failures into TcpAoError (errors.ts). Callers use
 * defaultBinding() or inject their own TcpAoBinding.
 */
import type * as net from 'node:net';

import { TcpAoError } from '../errors.js';
import {
  checkAddress,
  checkFd,
  checkInteger,
  checkObject,
  checkOptionalBoolean,
  checkOptionalInteger,
  checkPeerPrefix,
  checkPort,
  endpoint,
  invalid,
  isInteger,
  MAX_FD,
  toNativeKey,
  toNativeKeys,
  wipeCopies,
} from './args.js';
import { fromNativeError, UNSUPPORTED_REASON } from './errors.js';
import { MAX_BACKLOG, MAX_IFINDEX, MAX_KEEPALIVE_PROBES, MAX_KEEPALIVE_SECS, MAX_KEY_ID } from './limits.js';
import { loadAddon } from './load.js';
import type {
  AoConnectOptions,
  AoInfo,
  AoInfoUpdate,
  AoKeyInfo,
  AoKeyRef,
  AoKeySpec,
  AoListenOptions,
  KeepaliveOptions,
  NativeAddon,
  NativeKey,
  NativeKeyRef,
  NativeLayout,
  ProbeResult,
  ProcessGuard,
  TcpAoBinding,
} from './types.js';

/** Builds a TcpAoBinding over an addon; @load runs on first use. */
export function createBinding(load: () => NativeAddon): TcpAoBinding {
  let addon: NativeAddon | undefined;
  const native = (): NativeAddon => {
    addon ??= load();
    return addon;
  };

  const call = <T>(context: string, fn: (a: NativeAddon) => T, keys?: readonly NativeKey[]): T => {
    const a = native();
    try {
      return fn(a);
    } catch (err) {
      throw fromNativeError(err, context, keys);
    }
  };

  return {
    probeTcpAo(): ProbeResult {
      const result = call('probeTcpAo', (a) => a.probe());
      if (result.errno === 2 || result.errno === 0) return { supported: true };
      if (result.code === 'ENOPROTOOPT') {
        return { supported: false, errno: result.errno, code: result.code, reason: UNSUPPORTED_REASON };
      }
      return {
        supported: false,
        errno: result.errno,
        code: result.code,
        reason: `getsockopt(TCP_AO_INFO) on a fresh socket failed with ${result.code} (errno ${result.errno})`,
      };
    },

    createAoListener(opts: AoListenOptions): number {
      const o = checkObject(opts, 'options') as Partial<Record<keyof AoListenOptions, unknown>>;
      const family = checkAddress(o.host, 'host');
      const host = o.host as string;
      const port = checkPort(o.port, 0);
      const backlog = checkOptionalInteger(o.backlog, 'backlog', 1, MAX_BACKLOG, 511);
      const keys = toNativeKeys(o.keys, 'keys', family);
      try {
        return call(`createAoListener ${endpoint(host, port)}`, (a) => a.createListener({ host, port, backlog, keys }), keys);
      } finally {
        wipeCopies(keys);
      }
    },

    async connectAo(opts: AoConnectOptions): Promise<number> {
      const o = checkObject(opts, 'options') as Partial<Record<keyof AoConnectOptions, unknown>>;
      const family = checkAddress(o.host, 'host');
      const host = o.host as string;
      const port = checkPort(o.port, 1);
      const timeoutMs = checkInteger(o.timeoutMs, 'timeoutMs', 1, 2 ** 31 - 1);
      let localAddress: string | undefined;
      if (o.localAddress !== undefined) {
        if (checkAddress(o.localAddress, 'localAddress') !== family) {
          throw invalid('localAddress', `localAddress must be IPv${family} like host`);
        }
        localAddress = o.localAddress as string;
      }
      const keys = toNativeKeys(o.keys, 'keys', family);
      const context = `connectAo ${endpoint(host, port)}`;
      try {
        const pending = call(context, (a) =>
          a.connect(localAddress === undefined ? { host, port, timeoutMs, keys } : { host, port, localAddress, timeoutMs, keys }),
        keys);
        return await pending;
      } catch (err) {
        const mapped = fromNativeError(err, context, keys);
        if (mapped.sysCode === 'ETIMEDOUT' && mapped.syscall === 'connect') {
          throw new TcpAoError(
            'ERR_TCPAO_CONNECT_TIMEOUT',
            `${context}: no answer within ${timeoutMs} ms. With TCP-AO a wrong key or key id (or a peer without ` +
              'TCP-AO) shows up as a timeout because the peer drops the SYN silently: compare keys, sendId/recvId and ' +
              "algorithm on both ends and look at the peer's AO counters (pkt_bad, pkt_key_not_found, pkt_ao_required; " +
              'nstat TcpExtTCPAOBad TcpExtTCPAOKeyNotFound TcpExtTCPAORequired)',
            { cause: err, errno: mapped.errno, syscall: 'connect', sysCode: 'ETIMEDOUT', detail: { timeoutMs } },
          );
        }
        throw mapped;
      } finally {
        wipeCopies(keys);
      }
    },

    addKey(fd: number, key: AoKeySpec): void {
      const checkedFd = checkFd(fd);
      const nativeKey = toNativeKey(key, 'key');
      try {
        call(`addKey fd ${checkedFd}`, (a) => a.addKey(checkedFd, nativeKey), [nativeKey]);
      } finally {
        wipeCopies([nativeKey]);
      }
    },

    deleteKey(fd: number, ref: AoKeyRef): void {
      const checkedFd = checkFd(fd);
      const r = checkObject(ref, 'ref') as Partial<Record<keyof AoKeyRef, unknown>>;
      const { peer, prefixLength } = checkPeerPrefix(r.peer, r.prefixLength, 'ref');
      const nativeRef: NativeKeyRef = {
        peer,
        prefixLength,
        sendId: checkInteger(r.sendId, 'ref.sendId', 0, MAX_KEY_ID),
        recvId: checkInteger(r.recvId, 'ref.recvId', 0, MAX_KEY_ID),
        ifindex: checkOptionalInteger(r.ifindex, 'ref.ifindex', 0, MAX_IFINDEX, 0),
        ...(r.newCurrent === undefined ? {} : { newCurrent: checkInteger(r.newCurrent, 'ref.newCurrent', 0, MAX_KEY_ID) }),
        ...(r.newRnext === undefined ? {} : { newRnext: checkInteger(r.newRnext, 'ref.newRnext', 0, MAX_KEY_ID) }),
      };
      call(`deleteKey fd ${checkedFd}`, (a) => a.deleteKey(checkedFd, nativeRef));
    },

    getKeys(fd: number): AoKeyInfo[] {
      const checkedFd = checkFd(fd);
      return call(`getKeys fd ${checkedFd}`, (a) => a.getKeys(checkedFd)).map((k) => ({
        peer: k.peer,
        prefixLength: k.prefixLength,
        sendId: k.sendId,
        recvId: k.recvId,
        kernelAlgorithm: k.kernelAlgorithm,
        maclen: k.maclen,
        keyflags: k.keyflags,
        keylen: k.keylen,
        ifindex: k.ifindex,
        isCurrent: k.isCurrent,
        isRnext: k.isRnext,
        pktGood: k.pktGood,
        pktBad: k.pktBad,
      }));
    },

    getAoInfo(fd: number): AoInfo {
      const checkedFd = checkFd(fd);
      const info = call(`getAoInfo fd ${checkedFd}`, (a) => a.getInfo(checkedFd));
      return {
        aoRequired: info.aoRequired,
        acceptIcmps: info.acceptIcmps,
        currentKey: info.currentKey,
        rnextKey: info.rnextKey,
        pktGood: info.pktGood,
        pktBad: info.pktBad,
        pktKeyNotFound: info.pktKeyNotFound,
        pktAoRequired: info.pktAoRequired,
        pktDroppedIcmp: info.pktDroppedIcmp,
      };
    },

    setAoInfo(fd: number, update: AoInfoUpdate): void {
      const checkedFd = checkFd(fd);
      const u = checkObject(update, 'update') as Partial<Record<keyof AoInfoUpdate, unknown>>;
      const checked: { -readonly [K in keyof AoInfoUpdate]: AoInfoUpdate[K] } = {};
      if (u.currentKey !== undefined) checked.currentKey = checkInteger(u.currentKey, 'update.currentKey', 0, MAX_KEY_ID);
      if (u.rnextKey !== undefined) checked.rnextKey = checkInteger(u.rnextKey, 'update.rnextKey', 0, MAX_KEY_ID);
      if (u.aoRequired !== undefined) checked.aoRequired = checkOptionalBoolean(u.aoRequired, 'update.aoRequired');
      if (u.acceptIcmps !== undefined) checked.acceptIcmps = checkOptionalBoolean(u.acceptIcmps, 'update.acceptIcmps');
      call(`setAoInfo fd ${checkedFd}`, (a) => a.setInfo(checkedFd, checked));
    },

    setKeepalive(fd: number, keepalive: KeepaliveOptions): void {
      const checkedFd = checkFd(fd);
      const k = checkObject(keepalive, 'keepalive') as Partial<Record<keyof KeepaliveOptions, unknown>>;
      const checked: KeepaliveOptions = {
        idleSecs: checkInteger(k.idleSecs, 'keepalive.idleSecs', 1, MAX_KEEPALIVE_SECS),
        intervalSecs: checkInteger(k.intervalSecs, 'keepalive.intervalSecs', 1, MAX_KEEPALIVE_SECS),
        probes: checkInteger(k.probes, 'keepalive.probes', 1, MAX_KEEPALIVE_PROBES),
      };
      call(`setKeepalive fd ${checkedFd}`, (a) => a.setKeepalive(checkedFd, checked));
    },

    openScratchSocket(family: 4 | 6): number {
      if (family !== 4 && family !== 6) throw invalid('family', 'family must be 4 or 6');
      return call('openScratchSocket', (a) => a.openSocket(family));
    },

    closeFd(fd: number): void {
      const checkedFd = checkFd(fd);
      call(`closeFd ${checkedFd}`, (a) => a.closeFd(checkedFd));
    },

    socketFd,
  };
}

/**
 * The fd under a Node socket (accepted or connected), read from its libuv
 * handle. Throws ERR_TCPAO_INVALID_ARGUMENT when the socket has no fd
 * (not yet connected, already destroyed, or not fd-backed).
 */
export function socketFd(sock: net.Socket): number {
  const handle: unknown = Reflect.get(sock, '_handle');
  const fd: unknown = typeof handle === 'object' && handle !== null ? Reflect.get(handle, 'fd') : undefined;
  if (!isInteger(fd, 0, MAX_FD)) {
    throw invalid('socket', 'the socket has no file descriptor (not connected yet, or already closed)');
  }
  return fd;
}

let sharedBinding: TcpAoBinding | undefined;

/** The binding over build/Release/tcpao.node, loaded on first use. */
export function defaultBinding(): TcpAoBinding {
  sharedBinding ??= createBinding(() => loadAddon());
  return sharedBinding;
}

/**
 * Makes the process non-dumpable and sets RLIMIT_CORE to 0, so neither a
 * core file nor another process of the same uid (/proc/PID/environ, mem,
 * ptrace) can read key bytes. Call before any key is read.
 */
export function hardenProcess(addon: NativeAddon = loadAddon()): ProcessGuard {
  try {
    return addon.hardenProcess();
  } catch (err) {
    throw fromNativeError(err, 'hardenProcess');
  }
}

/**
 * Moves an environment variable's value into an off-heap buffer the caller
 * owns (and must zero), without ever making it a JS string; the variable is
 * gone from the environment afterwards. undefined when it is not set.
 */
export function takeEnvBytes(name: string, addon: NativeAddon = loadAddon()): Uint8Array | undefined {
  try {
    return addon.takeEnv(name);
  } catch (err) {
    throw fromNativeError(err, `takeEnv ${name}`);
  }
}

/** Struct layouts as compiled into the addon (for the layout test). */
export function nativeLayout(): NativeLayout {
  return loadAddon().layout();
}
