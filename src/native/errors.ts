// Native failures become TcpAoError: ENOPROTOOPT means the kernel lacks
// TCP-AO (ERR_TCPAO_UNSUPPORTED), anything else is ERR_TCPAO_SYSCALL with
// errno/syscall/sysCode and the native error as cause. Key bytes never
// appear in a message.
import { TcpAoError, type ErrorCode } from '../errors.js';
import type { NativeKey } from './types.js';

/** The reason probeTcpAo() gives when the kernel lacks TCP-AO. */
export const UNSUPPORTED_REASON = 'kernel built without CONFIG_TCP_AO';

const UNSUPPORTED_ADVICE =
  'the kernel was built without CONFIG_TCP_AO; run on a Linux 6.7 or later kernel built with CONFIG_TCP_AO=y';

interface NativeErrorShape {
  readonly message: string;
  readonly code: string | undefined;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly option: string | undefined;
  readonly argument: string | undefined;
  readonly fields: string | undefined;
  readonly keyIndex: number | undefined;
  readonly removeCode: string | undefined;
}

function readFlag(err: unknown, name: string): boolean | undefined {
  const v = typeof err === 'object' && err !== null ? Reflect.get(err, name) : undefined;
  return typeof v === 'boolean' ? v : undefined;
}

function readNativeError(err: unknown): NativeErrorShape {
  const get = (name: string): unknown =>
    typeof err === 'object' && err !== null ? Reflect.get(err, name) : undefined;
  const str = (name: string): string | undefined => {
    const v = get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const num = (name: string): number | undefined => {
    const v = get(name);
    return typeof v === 'number' ? v : undefined;
  };
  return {
    message: err instanceof Error ? err.message : String(err),
    code: str('code'),
    errno: num('errno'),
    syscall: str('syscall'),
    option: str('option'),
    argument: str('argument'),
    fields: str('fields'),
    keyIndex: num('keyIndex'),
    removeCode: str('removeCode'),
  };
}

/** Describes which key a native error refers to, without key bytes. */
function keyLabel(keys: readonly NativeKey[] | undefined, index: number | undefined): string {
  if (keys === undefined || index === undefined) return 'the key';
  const key = keys[index];
  if (key === undefined) return 'the key';
  return `key ${index} (peer ${key.peer}/${key.prefixLength}, sendId ${key.sendId}, recvId ${key.recvId})`;
}

/** The key an error names (the only one when none is named) and its index, when it is scoped to a VRF. */
function vrfScopedKey(keys: readonly NativeKey[] | undefined, named: number | undefined): { key: NativeKey; index: number } | undefined {
  const index = named ?? (keys?.length === 1 ? 0 : undefined);
  const key = index === undefined ? undefined : keys?.[index];
  return key !== undefined && index !== undefined && key.ifindex > 0 ? { key, index } : undefined;
}

/**
 * Turns an error thrown by the addon into a TcpAoError. @context says what
 * was attempted ("connectAo 10.0.0.1:179"); @keys lets messages name a key.
 */
export function fromNativeError(err: unknown, context: string, keys?: readonly NativeKey[]): TcpAoError {
  if (err instanceof TcpAoError) return err;
  const e = readNativeError(err);
  const syscall = e.syscall === undefined ? undefined : e.option === undefined ? e.syscall : `${e.syscall}(${e.option})`;
  const base = { cause: err, errno: e.errno, syscall, sysCode: e.code };
  const detail: Record<string, unknown> = {};
  if (e.keyIndex !== undefined) detail['keyIndex'] = e.keyIndex;

  if (e.code === 'ERR_TCPAO_INVALID_ARGUMENT' || e.argument === 'fd') {
    const what = e.argument ?? 'argument';
    const message = e.argument === 'fd' ? `fd is not an open TCP socket (${e.code ?? 'error'})` : e.message;
    return new TcpAoError('ERR_TCPAO_INVALID_ARGUMENT', `${context}: ${message}`, {
      ...base,
      detail: { ...detail, argument: what },
    });
  }
  if (e.code === 'ERR_TCPAO_KEY_READBACK') {
    const fields = (e.fields ?? '').split(',').filter((f) => f !== '');
    const kept = readFlag(err, 'keyRemoved') === false;
    const outcome = kept
      ? `the kernel refused to remove it (${e.removeCode ?? 'error'}: it is the current or RNext key, or the last one), ` +
        'so the connection was shut down'
      : 'the key was removed and the socket not used';
    return new TcpAoError(
      'ERR_TCPAO_KEY_READBACK',
      `${context}: the kernel's copy of ${keyLabel(keys, e.keyIndex)} differs from the key set ` +
        `(${e.fields ?? 'unknown fields'}); ${outcome}`,
      { cause: err, detail: { ...detail, fields, keyRemoved: !kept, ...(kept ? { shutDown: true } : {}) } },
    );
  }
  let code: ErrorCode = 'ERR_TCPAO_SYSCALL';
  let message = `${context}: ${e.message}`;
  const vrfKey = e.code === 'EINVAL' && e.option === 'TCP_AO_ADD_KEY' ? vrfScopedKey(keys, e.keyIndex) : undefined;
  if (e.code === 'ENOPROTOOPT') {
    code = 'ERR_TCPAO_UNSUPPORTED';
    message = `${context}: TCP-AO is not available: ${UNSUPPORTED_ADVICE} (${syscall ?? 'setsockopt'} returned ENOPROTOOPT)`;
  } else if (e.code === 'EAFNOSUPPORT' && e.option !== undefined && e.option.startsWith('TCP_AO_')) {
    code = 'ERR_TCPAO_INVALID_ARGUMENT';
    message = `${context}: ${keyLabel(keys, e.keyIndex)} is IPv6 but the socket is IPv4`;
    detail['argument'] = 'peer';
  } else if (e.code === 'EKEYREJECTED' && e.syscall === 'connect') {
    message =
      `${context}: the kernel refused to connect because no TCP-AO key covers the remote address (EKEYREJECTED); ` +
      'add a key whose peer and prefixLength include it';
  } else if (vrfKey !== undefined) {
    message =
      `${context}: ${keyLabel(keys, vrfKey.index)} names ifindex ${vrfKey.key.ifindex}, which is not a VRF ` +
      '(L3 master device) in this network namespace (EINVAL); set vrf_ifindex to the ifindex of a VRF, or 0 for the default VRF';
    detail['argument'] = 'ifindex';
  } else if (e.code === 'EEXIST' && e.option === 'TCP_AO_ADD_KEY') {
    message =
      `${context}: ${keyLabel(keys, e.keyIndex)} overlaps a key already on the socket (EEXIST): ` +
      'sendId and recvId must be unique among keys whose peers overlap';
  }
  return new TcpAoError(code, message, { ...base, detail });
}

