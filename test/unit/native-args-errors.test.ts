// How native failures become TcpAoError, the addon loader, and the RFC 5926
// cmac KDF used to predict what the kernel keeps. Mock addon, no syscalls.
import * as os from 'node:os';
import * as path from 'node:path';

import t from 'tap';

import { TcpAoError } from '../../src/errors.js';
import {
  aesCmac,
  cmacKdfKey,
  createBinding,
  fromNativeError,
  loadAddon,
  UNSUPPORTED_REASON,
  type AoKeySpec,
  type NativeAddon,
  type TcpAoBinding,
} from '../../src/native/index.js';

const SECRET = Buffer.from('do-not-leak-this-secret-4d2f');

function nativeError(message: string, props: Record<string, unknown>): Error {
  return Object.assign(new Error(message), props);
}

/** A binding whose every native call throws `err` (connect rejects with it). */
function failing(err: Error, probe = { errno: 2, code: 'ENOENT' }): TcpAoBinding {
  const fail = (): never => {
    throw err;
  };
  const addon: NativeAddon = {
    layout: fail,
    probe: () => probe,
    openSocket: fail,
    closeFd: fail,
    addKey: fail,
    deleteKey: fail,
    getKeys: fail,
    getInfo: fail,
    setInfo: fail,
    setKeepalive: fail,
    createListener: fail,
    connect: async () => fail(),
    hardenProcess: fail,
    takeEnv: fail,
  };
  return createBinding(() => addon);
}

const key: AoKeySpec = { peer: '127.0.0.1', sendId: 1, recvId: 2, algorithm: 'hmac-sha256', key: SECRET };
const enoprotoopt = nativeError('setsockopt(TCP_AO_ADD_KEY): Protocol not available', {
  code: 'ENOPROTOOPT',
  errno: 92,
  syscall: 'setsockopt',
  option: 'TCP_AO_ADD_KEY',
  keyIndex: 0,
});

t.test('ENOPROTOOPT becomes ERR_TCPAO_UNSUPPORTED with what to do', async (t) => {
  const b = failing(enoprotoopt);
  t.throws(() => b.createAoListener({ host: '127.0.0.1', port: 1790, keys: [key] }), {
    code: 'ERR_TCPAO_UNSUPPORTED',
    errno: 92,
    sysCode: 'ENOPROTOOPT',
    syscall: 'setsockopt(TCP_AO_ADD_KEY)',
    message: /createAoListener 127\.0\.0\.1:1790: .*kernel was built without CONFIG_TCP_AO.*CONFIG_TCP_AO=y/,
    cause: enoprotoopt,
  });
  await t.rejects(b.connectAo({ host: '::1', port: 179, keys: [{ ...key, peer: '::1' }], timeoutMs: 100 }), {
    code: 'ERR_TCPAO_UNSUPPORTED',
    message: /connectAo \[::1\]:179/,
  });
});

t.test('probe results', async (t) => {
  t.same(failing(enoprotoopt).probeTcpAo(), { supported: true }, 'ENOENT on a fresh socket means supported');
  t.same(failing(enoprotoopt, { errno: 92, code: 'ENOPROTOOPT' }).probeTcpAo(), {
    supported: false,
    errno: 92,
    code: 'ENOPROTOOPT',
    reason: UNSUPPORTED_REASON,
  });
  t.equal(UNSUPPORTED_REASON, 'kernel built without CONFIG_TCP_AO');
  t.match(failing(enoprotoopt, { errno: 22, code: 'EINVAL' }).probeTcpAo(), {
    supported: false,
    errno: 22,
    code: 'EINVAL',
    reason: /EINVAL \(errno 22\)/,
  });
});

t.test('other errnos become ERR_TCPAO_SYSCALL with errno, syscall, sysCode and cause', async (t) => {
  const err = nativeError('bind: Address already in use', { code: 'EADDRINUSE', errno: 98, syscall: 'bind' });
  t.throws(() => failing(err).createAoListener({ host: '127.0.0.1', port: 179, keys: [key] }), {
    code: 'ERR_TCPAO_SYSCALL',
    errno: 98,
    syscall: 'bind',
    sysCode: 'EADDRINUSE',
    message: 'createAoListener 127.0.0.1:179: bind: Address already in use',
    cause: err,
  });
});

t.test('a connect timeout explains the silent SYN drop', async (t) => {
  const err = nativeError('connect: Connection timed out', { code: 'ETIMEDOUT', errno: 110, syscall: 'connect' });
  await t.rejects(failing(err).connectAo({ host: '127.0.0.1', port: 179, keys: [key], timeoutMs: 1_500 }), {
    code: 'ERR_TCPAO_CONNECT_TIMEOUT',
    sysCode: 'ETIMEDOUT',
    detail: { timeoutMs: 1_500 },
    message: /within 1500 ms.*wrong key or key id.*drops the SYN silently.*counters/,
  });
});

t.test('EKEYREJECTED from connect says no key covers the peer', async (t) => {
  const err = nativeError('connect: Key was rejected by service', { code: 'EKEYREJECTED', errno: 129, syscall: 'connect' });
  await t.rejects(failing(err).connectAo({ host: '127.0.0.1', port: 179, keys: [key], timeoutMs: 1_500 }), {
    code: 'ERR_TCPAO_SYSCALL',
    sysCode: 'EKEYREJECTED',
    message: /no TCP-AO key covers the remote address/,
  });
});

t.test('a read-back mismatch names fields, not key bytes', async (t) => {
  const err = nativeError('TCP_AO_GET_KEYS read-back differs in: keylen,key', {
    code: 'ERR_TCPAO_KEY_READBACK',
    fields: 'keylen,key',
    keyIndex: 0,
  });
  try {
    failing(err).addKey(9, key);
    t.fail('addKey should throw');
  } catch (e) {
    t.ok(e instanceof TcpAoError);
    const te = e as TcpAoError;
    t.equal(te.code, 'ERR_TCPAO_KEY_READBACK');
    t.same(te.detail?.['fields'], ['keylen', 'key']);
    t.match(te.message, /key 0 \(peer 127\.0\.0\.1\/32, sendId 1, recvId 2\).*keylen,key/);
    t.notOk(te.message.includes(SECRET.toString()), 'no key bytes');
    t.notOk(te.message.includes(SECRET.toString('hex')), 'no hex key bytes');
    t.notOk(te.message.includes(SECRET.toString('base64')), 'no base64 key bytes');
  }
});

t.test('an fd the addon finds closed is an invalid argument', async (t) => {
  const err = nativeError('getsockopt(SO_DOMAIN): Bad file descriptor', {
    code: 'EBADF',
    errno: 9,
    syscall: 'getsockopt',
    option: 'SO_DOMAIN',
    argument: 'fd',
  });
  t.throws(() => failing(err).getAoInfo(77), {
    code: 'ERR_TCPAO_INVALID_ARGUMENT',
    detail: { argument: 'fd' },
    message: 'getAoInfo fd 77: fd is not an open TCP socket (EBADF)',
  });
});

t.test('an addon-side argument error keeps its argument name', async (t) => {
  const err = Object.assign(new TypeError('key.key must be 1 to 80 bytes long, got 0'), {
    code: 'ERR_TCPAO_INVALID_ARGUMENT',
    argument: 'key.key',
  });
  const mapped = fromNativeError(err, 'addKey fd 3');
  t.equal(mapped.code, 'ERR_TCPAO_INVALID_ARGUMENT');
  t.same(mapped.detail, { argument: 'key.key' });
});

t.test('a missing addon says how to build it', async (t) => {
  const missing = path.join(os.tmpdir(), 'no-such-dir', 'tcpao.node');
  t.throws(() => loadAddon(missing), {
    code: 'ERR_TCPAO_ADDON_MISSING',
    message: /run npm install \(needs python3, make, g\+\+\)/,
  });
  const binding = createBinding(() => loadAddon(missing));
  t.throws(() => binding.probeTcpAo(), { code: 'ERR_TCPAO_ADDON_MISSING' }, 'surfaces on first use');
  t.throws(() => loadAddon(require.resolve('../../src/errors')), {
    code: 'ERR_TCPAO_ADDON_MISSING',
    message: /does not export the TCP-AO functions/,
  });
});

t.test('AES-CMAC matches RFC 4493 section 4', async (t) => {
  const k = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
  const m = Buffer.from(
    '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
    'hex',
  );
  t.equal(aesCmac(k, m.subarray(0, 0)).toString('hex'), 'bb1d6929e95937287fa37d129b756746');
  t.equal(aesCmac(k, m.subarray(0, 16)).toString('hex'), '070a16b46b4d4144f79bdd9dd04a287c');
  t.equal(aesCmac(k, m.subarray(0, 40)).toString('hex'), 'dfa66747de9ae63030ca32611497c827');
  t.equal(aesCmac(k, m).toString('hex'), '51f0bebf7e3b9d92fc49741779363cfe');
});

t.test('the cmac KDF is AES-CMAC under a zero key (RFC 5926 3.1.1.2)', async (t) => {
  const input = Buffer.from('a-20-byte-cmac-key!!');
  t.same(cmacKdfKey(input), aesCmac(Buffer.alloc(16), input));
  t.equal(cmacKdfKey(input).length, 16);
});
