// Key management on real sockets: read-back of what was set, counters,
// current/RNext switching and deletion. Needs a kernel with TCP-AO.
import type { Socket } from 'node:net';

import t, { type Test } from 'tap';

import { defaultBinding, socketFd, type AoKeySpec } from '../../src/native/index.js';
import {
  connectAoSocket,
  listenAo,
  mirrorKey,
  nextConnection,
  readBytes,
  sendAndReceive,
  skipUnlessAo,
  testKey,
} from '../helpers/ao.js';

const binding = defaultBinding();

const host = '127.0.0.1';

/** A connected pair where both ends hold keys A (1/1, current) and B (2/2). */
async function twoKeyPair(t: Test) {
  const keyA = testKey({ peer: host, sendId: 1, recvId: 1, key: Buffer.from('key-A-secret-0000000000000') });
  const keyB = testKey({ peer: host, sendId: 2, recvId: 2, key: Buffer.from('key-B-secret-1111111111111') });
  const listener = await listenAo(t, { host, keys: [keyA, keyB] });
  const accepted = nextConnection(t, listener.server);
  const client = await connectAoSocket(t, {
    host,
    port: listener.port,
    keys: [{ ...keyA, setCurrent: true, setRnext: true }, keyB],
    timeoutMs: 5_000,
  });
  const server = await accepted;
  return { client, server, keyA, keyB };
}

async function roundTrip(t: Test, a: { client: Socket; server: Socket }, label: string) {
  const ping = Buffer.from(`ping ${label}`);
  t.same(await sendAndReceive(a.client, a.server, ping), ping, `${label}: client to server`);
  const pong = Buffer.from(`pong ${label}`);
  t.same(await sendAndReceive(a.server, a.client, pong), pong, `${label}: server to client`);
}

if (skipUnlessAo(t)) {
  t.test('keys read back as set, for every algorithm', async (t) => {
    const keys: AoKeySpec[] = [
      testKey({ peer: host, sendId: 1, recvId: 2, algorithm: 'hmac-sha1', key: Buffer.alloc(20, 1) }),
      testKey({ peer: '127.0.0.0', prefixLength: 8, sendId: 3, recvId: 4, excludeOptions: true, key: Buffer.alloc(80, 2) }),
      testKey({ peer: host, sendId: 5, recvId: 6, algorithm: 'aes-128-cmac', key: Buffer.alloc(20, 3), maclen: 16 }),
      testKey({ peer: host, sendId: 7, recvId: 8, algorithm: 'aes-128-cmac', key: Buffer.alloc(16, 4), maclen: 4 }),
    ];
    const listener = await listenAo(t, { host, keys });
    const readBack = binding.getKeys(listener.fd).sort((a, b) => a.sendId - b.sendId);
    t.match(readBack, [
      { peer: host, prefixLength: 32, sendId: 1, recvId: 2, kernelAlgorithm: 'hmac(sha1)', keylen: 20, maclen: 12, keyflags: 0 },
      { peer: '127.0.0.0', prefixLength: 8, sendId: 3, recvId: 4, kernelAlgorithm: 'hmac(sha256)', keylen: 80, maclen: 12, keyflags: 2 },
      // cmac(aes128) is stored as cmac(aes); a key that is not 16 bytes is kept as its 16-byte KDF output.
      { peer: host, prefixLength: 32, sendId: 5, recvId: 6, kernelAlgorithm: 'cmac(aes)', keylen: 16, maclen: 16, keyflags: 0 },
      { peer: host, prefixLength: 32, sendId: 7, recvId: 8, kernelAlgorithm: 'cmac(aes)', keylen: 16, maclen: 4, keyflags: 0 },
    ]);
    t.equal(readBack.length, 4);
    for (const k of readBack) {
      t.equal(k.ifindex, 0);
      t.equal(k.isCurrent, false, 'a listener has no current key');
      t.equal(Object.hasOwn(k, 'key'), false, 'no key bytes in the result');
    }
    t.equal(binding.getAoInfo(listener.fd).aoRequired, true, 'the listener requires AO');
  });

  t.test('addKey on a scratch socket, with setCurrent and an IPv4 key on an IPv6 socket', async (t) => {
    const fd = binding.openScratchSocket(6);
    t.teardown(() => binding.closeFd(fd));
    binding.addKey(fd, testKey({ peer: '::1', sendId: 10, recvId: 11, setCurrent: true, setRnext: true }));
    binding.addKey(fd, testKey({ peer: '192.0.2.0', prefixLength: 24, sendId: 12, recvId: 13 }));
    const keys = binding.getKeys(fd).sort((a, b) => a.sendId - b.sendId);
    t.match(keys, [
      { peer: '::1', prefixLength: 128, sendId: 10, recvId: 11, isCurrent: true, isRnext: true },
      { peer: '192.0.2.0', prefixLength: 24, sendId: 12, recvId: 13, isCurrent: false, isRnext: false },
    ]);
    const info = binding.getAoInfo(fd);
    t.equal(info.currentKey, 10);
    t.equal(info.rnextKey, 11);
    t.equal(info.aoRequired, false, 'addKey alone does not set ao_required');
    binding.setAoInfo(fd, { aoRequired: true });
    t.equal(binding.getAoInfo(fd).aoRequired, true);
    binding.setAoInfo(fd, { acceptIcmps: true });
    t.match(binding.getAoInfo(fd), { aoRequired: true, acceptIcmps: true }, 'setAoInfo keeps fields it was not given');
  });

  t.test('overlapping ids are refused by the kernel', async (t) => {
    const fd = binding.openScratchSocket(4);
    t.teardown(() => binding.closeFd(fd));
    binding.addKey(fd, testKey());
    t.throws(() => binding.addKey(fd, testKey({ sendId: 42 })), {
      code: 'ERR_TCPAO_SYSCALL',
      sysCode: 'EEXIST',
      message: /overlaps a key already on the socket/,
    });
    t.equal(binding.getKeys(fd).length, 1);
  });

  t.test('counters rise as segments flow', async (t) => {
    const pair = await twoKeyPair(t);
    const serverFd = socketFd(pair.server);
    const clientFd = socketFd(pair.client);
    const serverBefore = binding.getAoInfo(serverFd);
    const clientBefore = binding.getAoInfo(clientFd);
    const keyBefore = binding.getKeys(serverFd).find((k) => k.sendId === 1);
    await roundTrip(t, pair, 'counters');
    const serverAfter = binding.getAoInfo(serverFd);
    const clientAfter = binding.getAoInfo(clientFd);
    t.ok(serverAfter.pktGood > serverBefore.pktGood, `server pkt_good ${serverBefore.pktGood} -> ${serverAfter.pktGood}`);
    t.ok(clientAfter.pktGood > clientBefore.pktGood, `client pkt_good ${clientBefore.pktGood} -> ${clientAfter.pktGood}`);
    const keyAfter = binding.getKeys(serverFd).find((k) => k.sendId === 1);
    t.ok(keyBefore !== undefined && keyAfter !== undefined && keyAfter.pktGood > keyBefore.pktGood, 'per-key pkt_good rose');
  });

  t.test('setAoInfo switches current and RNext, and the peer follows', async (t) => {
    const pair = await twoKeyPair(t);
    const clientFd = socketFd(pair.client);
    const serverFd = socketFd(pair.server);
    t.match(binding.getAoInfo(clientFd), { currentKey: 1, rnextKey: 1 });
    binding.setAoInfo(clientFd, { currentKey: 2, rnextKey: 2 });
    t.match(binding.getAoInfo(clientFd), { currentKey: 2, rnextKey: 2, aoRequired: true }, 'client switched, ao_required kept');
    t.match(binding.getKeys(clientFd).find((k) => k.sendId === 2), { isCurrent: true, isRnext: true });
    await roundTrip(t, pair, 'after the switch');
    // The server's current key follows the RNextKeyID the client sends.
    t.equal(binding.getAoInfo(serverFd).currentKey, 2, 'server now sends with key 2');
    await roundTrip(t, pair, 'both on key 2');
  });

  t.test('deleteKey removes a non-current key; the current one is refused', async (t) => {
    const pair = await twoKeyPair(t);
    const clientFd = socketFd(pair.client);
    binding.deleteKey(clientFd, { peer: host, sendId: 2, recvId: 2 });
    t.match(binding.getKeys(clientFd), [{ sendId: 1, recvId: 1, isCurrent: true }], 'only key A is left');
    t.equal(binding.getKeys(clientFd).length, 1);
    t.throws(() => binding.deleteKey(clientFd, { peer: host, sendId: 1, recvId: 1 }), {
      code: 'ERR_TCPAO_SYSCALL',
      sysCode: 'EBUSY',
      syscall: 'setsockopt(TCP_AO_DEL_KEY)',
    });
    await roundTrip(t, pair, 'after deleting key B');
  });

  t.test('addKey on an accepted socket (socketFd) reads back', async (t) => {
    const pair = await twoKeyPair(t);
    const serverFd = socketFd(pair.server);
    binding.addKey(serverFd, testKey({ peer: host, sendId: 3, recvId: 3, algorithm: 'hmac-sha1' }));
    t.match(binding.getKeys(serverFd).find((k) => k.sendId === 3), { recvId: 3, kernelAlgorithm: 'hmac(sha1)', keylen: 28 });
    t.throws(() => binding.addKey(serverFd, testKey({ peer: '10.1.2.3', sendId: 4, recvId: 4 })), {
      code: 'ERR_TCPAO_SYSCALL',
      sysCode: 'EINVAL',
    }, 'a key for another peer is refused on an established socket');
    const data = readBytes(pair.client, 5);
    pair.server.write('still');
    t.same(await data, Buffer.from('still'));
  });

  t.test('mirrorKey sanity', async (t) => {
    const k = testKey();
    t.match(mirrorKey(k, '::1'), { peer: '::1', sendId: k.recvId, recvId: k.sendId, key: k.key });
  });
}
