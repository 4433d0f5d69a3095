// Argument checks in src/native/args.ts: every bad argument is refused with
// ERR_TCPAO_INVALID_ARGUMENT naming it, before the addon is called, and no
// message carries key bytes. Runs against a recording mock addon.
import * as net from 'node:net';

import t, { type Test } from 'tap';

import { SecretKey } from '../../src/config/keys.js';
import { TcpAoError } from '../../src/errors.js';
import {
  createBinding,
  type AoConnectOptions,
  type AoKeySpec,
  type AoListenOptions,
  type NativeAddon,
  type NativeKey,
  type TcpAoBinding,
} from '../../src/native/index.js';

const SECRET = Buffer.from('do-not-leak-this-secret-4d2f');

interface Recorder {
  readonly calls: string[];
  readonly keys: NativeKey[];
  /** The key bytes as the addon saw them during each call. */
  readonly seen: Buffer[];
  readonly binding: TcpAoBinding;
}

function recorder(): Recorder {
  const calls: string[] = [];
  const keys: NativeKey[] = [];
  const seen: Buffer[] = [];
  const addon: NativeAddon = {
    layout: () => {
      throw new Error('unused');
    },
    probe: () => {
      calls.push('probe');
      return { errno: 2, code: 'ENOENT' };
    },
    openSocket: () => {
      calls.push('openSocket');
      return 10;
    },
    closeFd: () => {
      calls.push('closeFd');
    },
    addKey: (_fd, key) => {
      calls.push('addKey');
      keys.push({ ...key });
      seen.push(Buffer.from(key.key));
    },
    setKeepalive: () => {
      calls.push('setKeepalive');
    },
    deleteKey: () => {
      calls.push('deleteKey');
    },
    getKeys: () => {
      calls.push('getKeys');
      return [];
    },
    getInfo: () => {
      calls.push('getInfo');
      throw new Error('unused');
    },
    setInfo: () => {
      calls.push('setInfo');
    },
    createListener: (opts) => {
      calls.push('createListener');
      keys.push(...opts.keys.map((k) => ({ ...k })));
      seen.push(...opts.keys.map((k) => Buffer.from(k.key)));
      return 11;
    },
    connect: async (opts) => {
      calls.push('connect');
      keys.push(...opts.keys.map((k) => ({ ...k })));
      seen.push(...opts.keys.map((k) => Buffer.from(k.key)));
      return 12;
    },
    hardenProcess: () => {
      throw new Error('unused');
    },
    takeEnv: () => {
      throw new Error('unused');
    },
  };
  return { calls, keys, seen, binding: createBinding(() => addon) };
}

function key(overrides: Record<string, unknown> = {}): AoKeySpec {
  return {
    peer: '192.0.2.1',
    sendId: 1,
    recvId: 2,
    algorithm: 'hmac-sha256',
    key: SECRET,
    ...overrides,
  } as AoKeySpec;
}

function assertInvalid(t: Test, fn: () => unknown, argument: string, pattern: RegExp): void {
  try {
    fn();
    t.fail(`expected ERR_TCPAO_INVALID_ARGUMENT for ${argument}`);
  } catch (err) {
    t.ok(err instanceof TcpAoError, 'a TcpAoError');
    const e = err as TcpAoError;
    t.equal(e.code, 'ERR_TCPAO_INVALID_ARGUMENT', `code for ${argument}`);
    t.equal(e.detail?.['argument'], argument, 'names the argument in detail');
    t.match(e.message, pattern, 'message says what is wrong');
    t.notOk(e.message.includes(SECRET.toString()), 'no key bytes in the message');
    t.notOk(e.message.includes(SECRET.toString('hex')), 'no hex key bytes in the message');
  }
}

const badKeys: [string, Record<string, unknown>, string, RegExp][] = [
  ['empty key', { key: new Uint8Array(0) }, 'key.key', /1 to 80 bytes long, got 0/],
  ['81-byte key', { key: new Uint8Array(81) }, 'key.key', /1 to 80 bytes long, got 81/],
  ['key as a string', { key: 'secret' }, 'key.key', /must be a Uint8Array/],
  ['sendId 256', { sendId: 256 }, 'key.sendId', /from 0 to 255/],
  ['sendId -1', { sendId: -1 }, 'key.sendId', /from 0 to 255/],
  ['recvId 1.5', { recvId: 1.5 }, 'key.recvId', /from 0 to 255/],
  ['recvId missing', { recvId: undefined }, 'key.recvId', /from 0 to 255/],
  ['unknown algorithm', { algorithm: 'md5' }, 'key.algorithm', /hmac-sha1, hmac-sha256, aes-128-cmac/],
  ['kernel name as algorithm', { algorithm: 'hmac(sha256)' }, 'key.algorithm', /one of/],
  ['host name as peer', { peer: 'example.com' }, 'key.peer', /IPv4 or IPv6 address literal/],
  ['zone in peer', { peer: 'fe80::1%eth0' }, 'key.peer', /address literal/],
  ['prefix 33 for IPv4', { prefixLength: 33 }, 'key.prefixLength', /from 0 to 32/],
  ['prefix 129 for IPv6', { peer: '2001:db8::1', prefixLength: 129 }, 'key.prefixLength', /from 0 to 128/],
  ['host bits beyond the prefix', { peer: '192.0.2.1', prefixLength: 24 }, 'key.prefixLength', /host bits/],
  ['IPv6 host bits', { peer: '2001:db8::1', prefixLength: 64 }, 'key.prefixLength', /host bits/],
  ['prefix 0 with an address', { prefixLength: 0 }, 'key.prefixLength', /needs key.peer 0.0.0.0/],
  ['any address with a prefix', { peer: '0.0.0.0' }, 'key.peer', /needs key.prefixLength 0/],
  ['maclen 17', { maclen: 17 }, 'key.maclen', /from 0 to 16/],
  ['negative ifindex', { ifindex: -1 }, 'key.ifindex', /from 0 to/],
  ['excludeOptions as a string', { excludeOptions: 'yes' }, 'key.excludeOptions', /true or false/],
];

t.test('addKey refuses bad keys before any native call', async (t) => {
  for (const [name, overrides, argument, pattern] of badKeys) {
    const r = recorder();
    t.test(name, async (t) => {
      assertInvalid(t, () => r.binding.addKey(5, key(overrides)), argument, pattern);
      t.same(r.calls, [], 'the addon was not called');
    });
  }
});

t.test('bad fds are refused before any native call', async (t) => {
  const r = recorder();
  for (const fd of [-1, 1.5, Number.NaN, 2 ** 31, '3']) {
    assertInvalid(t, () => r.binding.getAoInfo(fd as number), 'fd', /non-negative integer/);
    assertInvalid(t, () => r.binding.addKey(fd as number, key()), 'fd', /non-negative integer/);
    assertInvalid(t, () => r.binding.closeFd(fd as number), 'fd', /non-negative integer/);
  }
  t.same(r.calls, []);
});

t.test('createAoListener options', async (t) => {
  const good: AoListenOptions = { host: '127.0.0.1', port: 0, keys: [key({ peer: '127.0.0.1' })] };
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['no keys', { keys: [] }, 'keys', /plain TCP/],
    ['keys not an array', { keys: key() }, 'keys', /array of keys/],
    ['host name', { host: 'localhost' }, 'host', /address literal/],
    ['port 65536', { port: 65536 }, 'port', /from 0 to 65535/],
    ['backlog 0', { backlog: 0 }, 'backlog', /from 1 to 65535/],
    ['IPv6 key on an IPv4 listener', { keys: [key({ peer: '::1' })] }, 'keys[0].peer', /separate socket per address family/],
    ['IPv4 key on an IPv6 listener', { host: '::1' }, 'keys[0].peer', /is IPv4 but the socket is IPv6/],
    ['bad second key', { keys: [key(), key({ sendId: 300 })] }, 'keys[1].sendId', /from 0 to 255/],
  ];
  for (const [name, overrides, argument, pattern] of cases) {
    const r = recorder();
    assertInvalid(t, () => r.binding.createAoListener({ ...good, ...overrides } as AoListenOptions), argument, pattern);
    t.same(r.calls, [], `${name}: the addon was not called`);
  }
  const r = recorder();
  t.equal(r.binding.createAoListener(good), 11, 'a good listener reaches the addon');
  t.same(r.calls, ['createListener']);
});

t.test('connectAo options reject before any native call', async (t) => {
  const good: AoConnectOptions = { host: '127.0.0.1', port: 179, keys: [key({ peer: '127.0.0.1' })], timeoutMs: 1_500 };
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['port 0', { port: 0 }, 'port', /from 1 to 65535/],
    ['timeout 0', { timeoutMs: 0 }, 'timeoutMs', /from 1 to/],
    ['timeout missing', { timeoutMs: undefined }, 'timeoutMs', /from 1 to/],
    ['localAddress of the other family', { localAddress: '::1' }, 'localAddress', /must be IPv4 like host/],
    ['localAddress not an address', { localAddress: 'eth0' }, 'localAddress', /address literal/],
    ['no keys', { keys: [] }, 'keys', /at least one key/],
  ];
  for (const [name, overrides, argument, pattern] of cases) {
    const r = recorder();
    await t.rejects(r.binding.connectAo({ ...good, ...overrides } as AoConnectOptions), {
      code: 'ERR_TCPAO_INVALID_ARGUMENT',
      detail: { argument },
      message: pattern,
    }, name);
    t.same(r.calls, [], `${name}: the addon was not called`);
  }
  const r = recorder();
  t.equal(await r.binding.connectAo(good), 12);
});

t.test('keys reach the addon with kernel names and explicit defaults', async (t) => {
  const r = recorder();
  r.binding.addKey(5, key());
  r.binding.addKey(5, key({ peer: '2001:db8::', prefixLength: 32, algorithm: 'hmac-sha1', ifindex: 4, maclen: 16 }));
  r.binding.addKey(5, key({ algorithm: 'aes-128-cmac', key: Buffer.alloc(16, 7), excludeOptions: true }));
  t.match(r.keys[0], {
    peer: '192.0.2.1',
    prefixLength: 32,
    sendId: 1,
    recvId: 2,
    algorithm: 'hmac(sha256)',
    maclen: 0,
    ifindex: 0,
    excludeOptions: false,
    setCurrent: false,
    setRnext: false,
  });
  t.equal(r.keys[0]?.kernelKey, undefined, 'no KDF key for hmac');
  t.match(r.keys[1], { peer: '2001:db8::', prefixLength: 32, algorithm: 'hmac(sha1)', ifindex: 4, maclen: 16 });
  t.match(r.keys[2], { algorithm: 'cmac(aes128)', excludeOptions: true });
  t.equal(r.keys[2]?.kernelKey, undefined, 'a 16-byte cmac key is used as is');
});

t.test('a cmac key that is not 16 bytes comes with its KDF output, wiped after the call', async (t) => {
  const r = recorder();
  r.binding.addKey(5, key({ algorithm: 'aes-128-cmac', key: Buffer.from('a-20-byte-cmac-key!!') }));
  const kernelKey = r.keys[0]?.kernelKey;
  t.ok(kernelKey instanceof Uint8Array, 'kernelKey passed');
  t.equal(kernelKey?.length, 16);
  t.ok(kernelKey?.every((b) => b === 0), 'the derived key is zeroed once the call returns');
});

t.test('key material is revealed for the addon call only: that copy is zeroed after, the owner keeps its bytes', async (t) => {
  const r = recorder();
  const secret = SecretKey.fromBytes(SECRET);
  r.binding.addKey(5, key({ key: secret }));
  r.binding.createAoListener({ host: '192.0.2.9', port: 179, keys: [key({ key: secret })] });
  await r.binding.connectAo({ host: '192.0.2.1', port: 179, timeoutMs: 1_000, keys: [key({ key: secret })] });
  t.equal(r.keys.length, 3);
  r.seen.forEach((bytes, i) => t.same(bytes, SECRET, `call ${i}: the addon got the key bytes`));
  r.keys.forEach((k, i) => t.ok(k.key.every((b) => b === 0), `call ${i}: the copy handed to the addon is zeroed once it returns`));
  t.same(Buffer.from(secret.reveal()), SECRET, 'the SecretKey still holds the key for the next socket');
});

t.test('a revealed copy is zeroed when the addon throws, and when a later key is refused', async (t) => {
  const handed: Uint8Array[] = [];
  const failing: NativeAddon = {
    ...({} as NativeAddon),
    addKey: (_fd, k) => {
      handed.push(k.key);
      throw Object.assign(new Error('setsockopt(TCP_AO_ADD_KEY): File exists'), { code: 'EEXIST', syscall: 'setsockopt' });
    },
    createListener: (opts) => {
      handed.push(...opts.keys.map((k) => k.key));
      return 3;
    },
  };
  const binding = createBinding(() => failing);
  const secret = SecretKey.fromBytes(SECRET);
  t.throws(() => binding.addKey(5, key({ key: secret })), { code: 'ERR_TCPAO_SYSCALL' });
  t.equal(handed.length, 1);
  t.ok(handed[0]?.every((b) => b === 0), 'zeroed although the addon threw');
  const revealed: Uint8Array[] = [];
  const watched = { byteLength: SECRET.length, reveal: () => { const copy = secret.reveal(); revealed.push(copy); return copy; } };
  t.throws(
    () => binding.createAoListener({ host: '192.0.2.9', port: 179, keys: [key({ key: watched }), key({ key: watched, peer: '2001:db8::1' })] }),
    { code: 'ERR_TCPAO_INVALID_ARGUMENT' },
  );
  t.equal(revealed.length, 2, 'both keys were revealed before the second was refused');
  t.ok(revealed.every((copy) => copy.every((b) => b === 0)), 'every revealed copy is zeroed although the call never happened');
});

t.test('deleteKey and setAoInfo check their arguments', async (t) => {
  const r = recorder();
  assertInvalid(t, () => r.binding.deleteKey(5, { peer: '192.0.2.1', sendId: 1, recvId: 999 }), 'ref.recvId', /0 to 255/);
  assertInvalid(t, () => r.binding.deleteKey(5, { peer: 'x', sendId: 1, recvId: 1 }), 'ref.peer', /address literal/);
  assertInvalid(
    t,
    () => r.binding.deleteKey(5, { peer: '192.0.2.1', sendId: 1, recvId: 1, newCurrent: 256 }),
    'ref.newCurrent',
    /0 to 255/,
  );
  assertInvalid(t, () => r.binding.setAoInfo(5, { currentKey: 256 }), 'update.currentKey', /0 to 255/);
  assertInvalid(t, () => r.binding.setAoInfo(5, { aoRequired: 1 as unknown as boolean }), 'update.aoRequired', /true or false/);
  assertInvalid(t, () => r.binding.openScratchSocket(5 as 4), 'family', /4 or 6/);
  t.same(r.calls, []);
  r.binding.deleteKey(5, { peer: '192.0.2.1', sendId: 1, recvId: 1 });
  r.binding.setAoInfo(5, { currentKey: 3, aoRequired: true });
  t.same(r.calls, ['deleteKey', 'setInfo']);
});

t.test('setKeepalive checks the kernel limits before the native call', async (t) => {
  const r = recorder();
  assertInvalid(t, () => r.binding.setKeepalive(5, { idleSecs: 0, intervalSecs: 10, probes: 3 }), 'keepalive.idleSecs', /1 to 32767/);
  assertInvalid(
    t,
    () => r.binding.setKeepalive(5, { idleSecs: 30, intervalSecs: 32_768, probes: 3 }),
    'keepalive.intervalSecs',
    /1 to 32767/,
  );
  assertInvalid(t, () => r.binding.setKeepalive(5, { idleSecs: 30, intervalSecs: 10, probes: 128 }), 'keepalive.probes', /1 to 127/);
  t.same(r.calls, [], 'nothing reached the addon');
  r.binding.setKeepalive(5, { idleSecs: 30, intervalSecs: 10, probes: 3 });
  t.same(r.calls, ['setKeepalive']);
});

t.test('socketFd reads the handle fd without any', async (t) => {
  const r = recorder();
  const fake = (handle: unknown): net.Socket => Object.assign(Object.create(net.Socket.prototype) as net.Socket, { _handle: handle });
  t.equal(r.binding.socketFd(fake({ fd: 7 })), 7);
  for (const handle of [null, undefined, {}, { fd: -1 }, { fd: '7' }]) {
    t.throws(() => r.binding.socketFd(fake(handle)), { code: 'ERR_TCPAO_INVALID_ARGUMENT', message: /no file descriptor/ });
  }
  const unconnected = new net.Socket();
  t.throws(() => r.binding.socketFd(unconnected), { code: 'ERR_TCPAO_INVALID_ARGUMENT' });
  unconnected.destroy();
});
