// The addon's own argument checks: src/native/ validates first, but a direct
// call with a bad shape must throw a coded TypeError, never crash the process
// or reach the kernel. Needs the built addon, not TCP-AO.
import * as fs from 'node:fs';

import t from 'tap';

import { loadAddon } from '../../src/native/index.js';

interface LooseAddon {
  readonly [name: string]: (...args: unknown[]) => unknown;
}

const addon = loadAddon() as unknown as LooseAddon;

function call(name: string, ...args: unknown[]): unknown {
  const fn = addon[name];
  if (fn === undefined) throw new Error(`addon has no ${name}`);
  return fn(...args);
}

const goodKey = {
  peer: '127.0.0.1',
  prefixLength: 32,
  sendId: 1,
  recvId: 2,
  algorithm: 'hmac(sha256)',
  key: Buffer.from('guard-test-secret'),
};

const invalidArgument = (argument: string) => ({ name: 'TypeError', code: 'ERR_TCPAO_INVALID_ARGUMENT', argument });

t.test('fd arguments', async (t) => {
  for (const name of ['closeFd', 'getKeys', 'getInfo']) {
    for (const fd of [undefined, null, -1, 1.5, Number.NaN, Infinity, 2 ** 31, '3', {}]) {
      t.throws(() => call(name, fd), invalidArgument('fd'), `${name}(${String(fd)})`);
    }
  }
  t.throws(() => call('addKey', -1, goodKey), invalidArgument('fd'));
  t.throws(() => call('setInfo', 'x', {}), invalidArgument('fd'));
});

t.test('an fd that is not a TCP socket is refused before any TCP-AO call', async (t) => {
  const file = fs.openSync('/dev/null', 'r');
  t.teardown(() => fs.closeSync(file));
  t.throws(() => call('getInfo', file), { code: 'ENOTSOCK', argument: 'fd', syscall: 'getsockopt' });
  t.throws(() => call('addKey', file, goodKey), { code: 'ENOTSOCK', argument: 'fd' });
  t.throws(() => call('getKeys', 1_000_000), { code: 'EBADF', argument: 'fd' });
});

t.test('key objects', async (t) => {
  const fd = call('openSocket', 4) as number;
  t.teardown(() => call('closeFd', fd));
  const cases: [string, unknown, string][] = [
    ['not an object', 'key', 'key'],
    ['no peer', { ...goodKey, peer: undefined }, 'key.peer'],
    ['peer a number', { ...goodKey, peer: 127 }, 'key.peer'],
    ['peer a host name', { ...goodKey, peer: 'localhost' }, 'key.peer'],
    ['overlong peer', { ...goodKey, peer: '1'.repeat(10_000) }, 'key.peer'],
    ['prefix 33', { ...goodKey, prefixLength: 33 }, 'key.prefixLength'],
    ['host bits', { ...goodKey, prefixLength: 8 }, 'key.prefixLength'],
    ['sendId 256', { ...goodKey, sendId: 256 }, 'key.sendId'],
    ['recvId -1', { ...goodKey, recvId: -1 }, 'key.recvId'],
    ['recvId missing', { ...goodKey, recvId: undefined }, 'key.recvId'],
    ['maclen 17', { ...goodKey, maclen: 17 }, 'key.maclen'],
    ['unknown algorithm', { ...goodKey, algorithm: 'md5' }, 'key.algorithm'],
    ['algorithm longer than alg_name', { ...goodKey, algorithm: 'h'.repeat(100) }, 'key.algorithm'],
    ['empty key', { ...goodKey, key: Buffer.alloc(0) }, 'key.key'],
    ['81-byte key', { ...goodKey, key: Buffer.alloc(81) }, 'key.key'],
    ['key a string', { ...goodKey, key: 'secret' }, 'key.key'],
    ['key a Float32Array', { ...goodKey, key: new Float32Array(4) }, 'key.key'],
    ['cmac 20-byte key without kernelKey', { ...goodKey, algorithm: 'cmac(aes128)', key: Buffer.alloc(20, 1) }, 'key.kernelKey'],
    [
      'cmac kernelKey of 15 bytes',
      { ...goodKey, algorithm: 'cmac(aes128)', key: Buffer.alloc(20, 1), kernelKey: Buffer.alloc(15) },
      'key.kernelKey',
    ],
    ['setCurrent a number', { ...goodKey, setCurrent: 1 }, 'key.setCurrent'],
  ];
  for (const [name, key, argument] of cases) {
    t.throws(() => call('addKey', fd, key), invalidArgument(argument), name);
  }
});

t.test('listener and connect options', async (t) => {
  t.throws(() => call('createListener'), invalidArgument('options'));
  t.throws(() => call('createListener', { host: '127.0.0.1', port: 0, keys: [] }), invalidArgument('keys'));
  t.throws(() => call('createListener', { host: '127.0.0.1', port: 0, keys: 'k' }), invalidArgument('keys'));
  t.throws(
    () => call('createListener', { host: '127.0.0.1', port: 0, keys: new Array(257).fill(goodKey) }),
    invalidArgument('keys'),
  );
  t.throws(() => call('createListener', { host: 'nope', port: 0, keys: [goodKey] }), invalidArgument('host'));
  t.throws(() => call('createListener', { host: '127.0.0.1', port: 70_000, keys: [goodKey] }), invalidArgument('port'));
  t.throws(() => call('createListener', { host: '127.0.0.1', port: 0, backlog: 0, keys: [goodKey] }), invalidArgument('backlog'));
  t.throws(() => call('connect', { host: '127.0.0.1', port: 0, keys: [goodKey], timeoutMs: 10 }), invalidArgument('port'));
  t.throws(() => call('connect', { host: '127.0.0.1', port: 1, keys: [goodKey], timeoutMs: 0 }), invalidArgument('timeoutMs'));
  t.throws(
    () => call('connect', { host: '127.0.0.1', port: 1, localAddress: '::1', keys: [goodKey], timeoutMs: 10 }),
    invalidArgument('localAddress'),
  );
  t.throws(() => call('openSocket', 5), invalidArgument('family'));
  t.throws(() => call('deleteKey', 0, { peer: '127.0.0.1', sendId: 1 }), invalidArgument('ref.recvId'));
  t.throws(() => call('setInfo', 0, { currentKey: 300 }), invalidArgument('update.currentKey'));
});

t.test('closeFd closes, and a second close is EBADF', async (t) => {
  const fd = call('openSocket', 6) as number;
  t.ok(fs.existsSync(`/proc/self/fd/${fd}`), 'the scratch socket is open');
  call('closeFd', fd);
  t.notOk(fs.existsSync(`/proc/self/fd/${fd}`), 'closed');
  t.throws(() => call('closeFd', fd), { code: 'EBADF', argument: 'fd', syscall: 'close' });
});
