// The capability probe and the fail-closed paths on the real kernel. Without
// TCP-AO (this host): ENOPROTOOPT, ERR_TCPAO_UNSUPPORTED, and no socket left
// behind. With TCP-AO (the lab): failures part-way through socket set-up
// still leave no socket behind. Both branches assert; neither skips.
import type * as net from 'node:net';

import t from 'tap';

import { defaultBinding, UNSUPPORTED_REASON } from '../../src/native/index.js';
import { listenPlain, openFdCount, testKey } from '../helpers/ao.js';

const binding = defaultBinding();

const probe = binding.probeTcpAo();

if (!probe.supported) {
  t.test('without CONFIG_TCP_AO the probe says why', async (t) => {
    t.same(probe, { supported: false, errno: 92, code: 'ENOPROTOOPT', reason: UNSUPPORTED_REASON });
  });

  const unsupported = {
    code: 'ERR_TCPAO_UNSUPPORTED',
    sysCode: 'ENOPROTOOPT',
    errno: 92,
    message: /the kernel was built without CONFIG_TCP_AO; run on a Linux 6\.7 or later kernel built with CONFIG_TCP_AO=y/,
  };

  t.test('createAoListener refuses and leaves no socket open', async (t) => {
    for (const host of ['127.0.0.1', '::1']) {
      const before = openFdCount();
      t.throws(() => binding.createAoListener({ host, port: 0, keys: [testKey({ peer: host })] }), {
        ...unsupported,
        syscall: 'setsockopt(TCP_AO_ADD_KEY)',
      });
      t.equal(openFdCount(), before, `no fd left behind (${host})`);
    }
  });

  t.test('connectAo rejects and never hands out a plain socket', async (t) => {
    const plain = await listenPlain(t, '127.0.0.1');
    let accepted = 0;
    plain.server.on('connection', (sock: net.Socket) => {
      accepted++;
      sock.destroy();
    });
    const before = openFdCount();
    await t.rejects(
      binding.connectAo({ host: '127.0.0.1', port: plain.port, keys: [testKey()], timeoutMs: 1_500 }),
      unsupported,
    );
    t.equal(openFdCount(), before, 'no fd left behind');
    t.equal(accepted, 0, 'the plain listener never saw a connection');
  });

  t.test('key and info calls on a scratch socket say the same', async (t) => {
    const fd = binding.openScratchSocket(4);
    t.teardown(() => binding.closeFd(fd));
    t.throws(() => binding.addKey(fd, testKey()), unsupported);
    t.throws(() => binding.getAoInfo(fd), { ...unsupported, syscall: 'getsockopt(TCP_AO_INFO)' });
    t.throws(() => binding.getKeys(fd), { ...unsupported, syscall: 'getsockopt(TCP_AO_GET_KEYS)' });
  });
} else {
  t.test('with TCP-AO the probe says supported', async (t) => {
    t.same(probe, { supported: true });
  });

  t.test('a listener failing at its second key leaves no socket open', async (t) => {
    const before = openFdCount();
    t.throws(
      () =>
        binding.createAoListener({
          host: '127.0.0.1',
          port: 0,
          keys: [testKey(), testKey({ sendId: 7 })],
        }),
      { code: 'ERR_TCPAO_SYSCALL', sysCode: 'EEXIST', detail: { keyIndex: 1 }, message: /key 1 .* overlaps/ },
    );
    t.equal(openFdCount(), before, 'no fd left behind');
  });

  t.test('a listener failing at bind leaves no socket open', async (t) => {
    const plain = await listenPlain(t, '127.0.0.1');
    const before = openFdCount();
    t.throws(() => binding.createAoListener({ host: '127.0.0.1', port: plain.port, keys: [testKey()] }), {
      code: 'ERR_TCPAO_SYSCALL',
      sysCode: 'EADDRINUSE',
      syscall: 'bind',
    });
    t.equal(openFdCount(), before, 'no fd left behind');
  });

  t.test('a connect refused by the kernel leaves no socket open', async (t) => {
    const before = openFdCount();
    await t.rejects(
      binding.connectAo({ host: '127.0.0.1', port: 9, keys: [testKey({ peer: '10.0.0.1' })], timeoutMs: 1_500 }),
      { code: 'ERR_TCPAO_SYSCALL', sysCode: 'EKEYREJECTED' },
    );
    t.equal(openFdCount(), before, 'no fd left behind');
  });
}
