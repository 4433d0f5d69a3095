/**
 * The two fake bindings of the unit tests. FakeKernelBinding is an in-memory
 * TcpAoBinding that keeps the kernel's key rules (EEXIST on a
 * reused send_id or recv_id for the peer, no deleting the current, RNext or
 * last key of a connection, no current/RNext on a listener, whose last key can
 * go), for the rotation and observability tests. fakeDoctorBinding records
 * what the doctor probes and installs on its scratch sockets.
 */
import { keyBytes } from './key-bytes.js';
import type { DoctorBinding } from '../../src/doctor/types.js';
import type { AoInfo, AoInfoUpdate, AoKeyInfo, AoKeyRef, AoKeySpec, MacAlgorithm, ProbeResult, TcpAoBinding } from '../../src/native/index.js';
import { TcpAoError } from '../../src/errors.js';

interface FakeKey {
  readonly peer: string;
  readonly prefixLength: number;
  readonly sendId: number;
  readonly recvId: number;
  readonly algorithm: string;
  readonly bytes: string;
  readonly ifindex: number;
  pktGood: bigint;
}

export interface FakeSocket {
  readonly listener: boolean;
  keys: FakeKey[];
  current: number | undefined;
  rnext: number | undefined;
}

function kernelError(code: string, option: string): TcpAoError {
  return new TcpAoError('ERR_TCPAO_SYSCALL', `fake ${option}: ${code}`, { sysCode: code, syscall: `setsockopt(${option})` });
}

export class FakeKernelBinding {
  readonly sockets = new Map<number, FakeSocket>();
  readonly calls: string[] = [];
  /** Interfaces that are VRF (L3 master) devices; a key bound to any other ifindex is refused with EINVAL, as the kernel does. */
  readonly vrfDevices = new Set<number>();
  /** Makes the next matching add fail with this errno name, once. */
  failNextAdd: { readonly fd: number; readonly sendId: number; readonly code: string } | undefined;
  #nextFd = 100;

  socket(listener: boolean, keys: { sendId: number; recvId: number; bytes?: string; peer?: string; good?: bigint }[], current?: number, rnext?: number): number {
    const fd = this.#nextFd++;
    this.sockets.set(fd, {
      listener,
      keys: keys.map((key) => ({
        peer: key.peer ?? '10.0.0.1',
        prefixLength: 32,
        sendId: key.sendId,
        recvId: key.recvId,
        algorithm: 'hmac(sha256)',
        bytes: key.bytes ?? `k${key.sendId}`,
        ifindex: 0,
        pktGood: key.good ?? 0n,
      })),
      current,
      rnext,
    });
    return fd;
  }

  get(fd: number): FakeSocket {
    const socket = this.sockets.get(fd);
    if (socket === undefined) throw new TcpAoError('ERR_TCPAO_INVALID_ARGUMENT', 'fd is not an open TCP socket (EBADF)');
    return socket;
  }

  sendIds(fd: number): number[] {
    return this.get(fd)
      .keys.map((key) => key.sendId)
      .sort((a, b) => a - b);
  }

  binding(): TcpAoBinding {
    const unsupported = () => {
      throw new Error('not used by these tests');
    };
    return {
      probeTcpAo: () => ({ supported: true }),
      createAoListener: unsupported,
      connectAo: unsupported,
      openScratchSocket: unsupported,
      closeFd: unsupported,
      socketFd: unsupported,
      setKeepalive: unsupported,
      addKey: (fd: number, spec: AoKeySpec) => {
        const socket = this.get(fd);
        this.calls.push(`add ${fd} ${spec.sendId}/${spec.recvId}`);
        const failure = this.failNextAdd;
        if (failure !== undefined && failure.fd === fd && failure.sendId === spec.sendId) {
          this.failNextAdd = undefined;
          throw kernelError(failure.code, 'TCP_AO_ADD_KEY');
        }
        const ifindex = spec.ifindex ?? 0;
        if (ifindex !== 0 && !this.vrfDevices.has(ifindex)) throw kernelError('EINVAL', 'TCP_AO_ADD_KEY');
        if (socket.keys.some((key) => key.sendId === spec.sendId || key.recvId === spec.recvId)) throw kernelError('EEXIST', 'TCP_AO_ADD_KEY');
        socket.keys.push({
          peer: spec.peer,
          prefixLength: spec.prefixLength ?? 32,
          sendId: spec.sendId,
          recvId: spec.recvId,
          algorithm: spec.algorithm,
          bytes: keyBytes(spec.key).toString(),
          ifindex: spec.ifindex ?? 0,
          pktGood: 0n,
        });
      },
      deleteKey: (fd: number, ref: AoKeyRef) => {
        const socket = this.get(fd);
        this.calls.push(`delete ${fd} ${ref.sendId}/${ref.recvId}`);
        const index = socket.keys.findIndex((key) => key.sendId === ref.sendId && key.recvId === ref.recvId);
        if (index < 0) throw kernelError('ENOENT', 'TCP_AO_DEL_KEY');
        if (socket.current === ref.sendId || socket.rnext === ref.recvId || (socket.keys.length === 1 && !socket.listener)) {
          throw kernelError('EBUSY', 'TCP_AO_DEL_KEY');
        }
        socket.keys.splice(index, 1);
      },
      getKeys: (fd: number): AoKeyInfo[] =>
        this.get(fd).keys.map((key) => ({
          peer: key.peer,
          prefixLength: key.prefixLength,
          sendId: key.sendId,
          recvId: key.recvId,
          kernelAlgorithm: key.algorithm,
          maclen: 12,
          keyflags: 0,
          keylen: key.bytes.length,
          ifindex: key.ifindex,
          isCurrent: this.get(fd).current === key.sendId,
          isRnext: this.get(fd).rnext === key.recvId,
          pktGood: key.pktGood,
          pktBad: 0n,
        })),
      getAoInfo: (fd: number): AoInfo => {
        const socket = this.get(fd);
        return {
          aoRequired: true,
          acceptIcmps: false,
          currentKey: socket.current ?? 0,
          rnextKey: socket.rnext ?? 0,
          pktGood: 10n,
          pktBad: 0n,
          pktKeyNotFound: 0n,
          pktAoRequired: 0n,
          pktDroppedIcmp: 0n,
        };
      },
      setAoInfo: (fd: number, update: AoInfoUpdate) => {
        const socket = this.get(fd);
        this.calls.push(`set ${fd} current=${update.currentKey ?? '-'} rnext=${update.rnextKey ?? '-'}`);
        if (socket.listener) throw kernelError('EINVAL', 'TCP_AO_INFO');
        if (update.currentKey !== undefined) {
          if (!socket.keys.some((key) => key.sendId === update.currentKey)) throw kernelError('ENOENT', 'TCP_AO_INFO');
          socket.current = update.currentKey;
        }
        if (update.rnextKey !== undefined) {
          if (!socket.keys.some((key) => key.recvId === update.rnextKey)) throw kernelError('ENOENT', 'TCP_AO_INFO');
          socket.rnext = update.rnextKey;
        }
      },
    } as TcpAoBinding;
  }
}

export const SUPPORTED: ProbeResult = { supported: true };
export const NO_TCP_AO: ProbeResult = { supported: false, errno: 92, code: 'ENOPROTOOPT', reason: 'kernel built without CONFIG_TCP_AO' };

/** The doctor's binding: probes and scratch-socket key installs, recorded. */
export interface FakeDoctorBinding extends DoctorBinding {
  readonly opened: number[];
  readonly closed: number[];
  readonly added: { readonly fd: number; readonly key: AoKeySpec }[];
}

/** A syscall failure shaped as native.ts reports it. */
export function syscallError(sysCode: string, errno: number, syscall = 'setsockopt(TCP_AO_ADD_KEY)'): TcpAoError {
  return new TcpAoError('ERR_TCPAO_SYSCALL', `addKey: ${syscall} failed: ${sysCode}`, { errno, syscall, sysCode });
}

export function fakeDoctorBinding(
  options: { readonly probe?: ProbeResult | Error; readonly refuse?: Partial<Record<MacAlgorithm, Error>> } = {},
): FakeDoctorBinding {
  const opened: number[] = [];
  const closed: number[] = [];
  const added: { fd: number; key: AoKeySpec }[] = [];
  let nextFd = 40;
  return {
    opened,
    closed,
    added,
    probeTcpAo() {
      const probe = options.probe ?? SUPPORTED;
      if (probe instanceof Error) throw probe;
      return probe;
    },
    openScratchSocket() {
      nextFd += 1;
      opened.push(nextFd);
      return nextFd;
    },
    addKey(fd, key) {
      const refusal = options.refuse?.[key.algorithm];
      if (refusal !== undefined) throw refusal;
      added.push({ fd, key });
    },
    closeFd(fd) {
      closed.push(fd);
    },
  };
}
