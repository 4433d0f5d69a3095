// Matching keys connect and carry data both ways, over IPv4 and IPv6, with
// every algorithm; needs a kernel with TCP-AO (the lab).
import t from 'tap';

import { defaultBinding, socketFd, type AoKeySpec } from '../../src/native/index.js';
import {
  connectAoSocket,
  listenAo,
  mirrorKey,
  nextConnection,
  sendAndReceive,
  skipUnlessAo,
  testKey,
} from '../helpers/ao.js';

const binding = defaultBinding();

const cases: [string, string, Partial<AoKeySpec>][] = [
  ['IPv4 hmac-sha256', '127.0.0.1', {}],
  ['IPv6 hmac-sha256', '::1', {}],
  ['IPv4 hmac-sha1', '127.0.0.1', { algorithm: 'hmac-sha1' }],
  ['IPv6 aes-128-cmac, 16-byte key', '::1', { algorithm: 'aes-128-cmac', key: Buffer.from('0123456789abcdef') }],
  ['IPv4 aes-128-cmac, 20-byte key (RFC 5926 KDF)', '127.0.0.1', {
    algorithm: 'aes-128-cmac',
    key: Buffer.from('twenty-byte-cmac-key'),
  }],
  ['IPv4 sendId equal to recvId, maclen 16, excludeOptions', '127.0.0.1', {
    sendId: 9,
    recvId: 9,
    maclen: 16,
    excludeOptions: true,
  }],
];

if (skipUnlessAo(t)) {
  for (const [name, host, overrides] of cases) {
    t.test(name, async (t) => {
      const serverKey = testKey({ peer: host, ...overrides });
      const listener = await listenAo(t, { host, keys: [serverKey] });
      const accepted = nextConnection(t, listener.server);
      const client = await connectAoSocket(t, {
        host,
        port: listener.port,
        keys: [mirrorKey(serverKey, host)],
        timeoutMs: 5_000,
      });
      const server = await accepted;

      const request = Buffer.from(`hello over TCP-AO (${name})`);
      t.same(await sendAndReceive(client, server, request), request, 'client to server');
      const reply = Buffer.alloc(64 * 1024, 0x5a);
      t.same(await sendAndReceive(server, client, reply), reply, 'server to client, 64 KiB');

      const serverInfo = binding.getAoInfo(socketFd(server));
      const clientInfo = binding.getAoInfo(socketFd(client));
      t.equal(serverInfo.aoRequired, true, 'the accepted socket inherits ao_required');
      t.equal(clientInfo.aoRequired, true, 'the client requires AO');
      t.ok(serverInfo.pktGood > 0n, 'the server verified segments');
      t.ok(clientInfo.pktGood > 0n, 'the client verified segments');
      t.equal(serverInfo.pktBad, 0n);
      t.equal(clientInfo.pktBad, 0n);
      t.equal(clientInfo.currentKey, serverKey.recvId, "client's current key is its sendId");
      t.equal(serverInfo.currentKey, serverKey.sendId, "server's current key is its sendId");
    });
  }

  t.test('a /8 key on the listener covers the client', async (t) => {
    const serverKey = testKey({ peer: '127.0.0.0', prefixLength: 8 });
    const listener = await listenAo(t, { host: '127.0.0.1', keys: [serverKey] });
    const accepted = nextConnection(t, listener.server);
    const client = await connectAoSocket(t, {
      host: '127.0.0.1',
      port: listener.port,
      keys: [mirrorKey(testKey(), '127.0.0.1')],
      timeoutMs: 5_000,
    });
    const server = await accepted;
    const payload = Buffer.from('prefix match');
    t.same(await sendAndReceive(client, server, payload), payload);
  });
}
