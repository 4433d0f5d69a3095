// A key whose read-back differs must not stay usable on a live socket. The
// kernel refuses to delete a current or RNext key (EBUSY), so the addon shuts
// the connection down instead. The mismatch is made deterministic by handing
// the raw addon a wrong RFC 5926 KDF output (kernelKey) for a cmac key: the
// kernel keeps the real one, the read-back sees a different key. Needs a
// kernel with TCP-AO (the lab).
import t from 'tap';

import { defaultBinding, loadAddon, socketFd, type NativeKey } from '../../src/native/index.js';
import { connectAoSocket, listenAo, mirrorKey, nextConnection, sendAndReceive, skipUnlessAo, testKey } from '../helpers/ao.js';

const binding = defaultBinding();

const host = '127.0.0.1';

interface ReadbackError {
  readonly code?: unknown;
  readonly fields?: unknown;
  readonly keyRemoved?: unknown;
  readonly shutDown?: unknown;
  readonly removeCode?: unknown;
}

function unverifiedCurrentKey(): NativeKey {
  return {
    peer: host,
    prefixLength: 32,
    sendId: 7,
    recvId: 7,
    algorithm: 'cmac(aes128)',
    key: Buffer.from('twenty-byte-cmac-key'),
    kernelKey: Buffer.alloc(16, 0xa5),
    maclen: 0,
    ifindex: 0,
    excludeOptions: false,
    setCurrent: true,
    setRnext: false,
  };
}

if (skipUnlessAo(t)) {
  t.test('an unverified key that is current cannot be deleted, so the connection is shut down', async (t) => {
    const key = testKey({ peer: host });
    const listener = await listenAo(t, { host, keys: [key] });
    const accepted = nextConnection(t, listener.server);
    const client = await connectAoSocket(t, { host, port: listener.port, keys: [mirrorKey(key, host)], timeoutMs: 5_000 });
    const server = await accepted;
    const hello = Buffer.from('before the bad key');
    t.same(await sendAndReceive(client, server, hello), hello, 'the connection works before');

    // The peer may never see our FIN (it is signed with the unverified key), so the local end is watched.
    const clientEnded = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.resume();
    let thrown: ReadbackError | undefined;
    try {
      loadAddon().addKey(socketFd(client), unverifiedCurrentKey());
    } catch (err) {
      thrown = err as ReadbackError;
    }
    t.equal(thrown?.code, 'ERR_TCPAO_KEY_READBACK', 'the read-back mismatch is reported');
    t.equal(thrown?.fields, 'key', 'the key bytes differ');
    t.equal(thrown?.keyRemoved, false, 'the error says the key is still installed');
    t.equal(thrown?.removeCode, 'EBUSY', 'because the kernel refused to delete the current key');
    t.equal(thrown?.shutDown, true, 'and that the connection was shut down');
    const installed = binding.getKeys(socketFd(client)).map((k) => `${k.sendId}/${k.recvId}`);
    t.ok(installed.includes('7/7'), 'the kernel still holds the unverified key');
    await clientEnded;
    t.pass('the socket reads end-of-file: it was shut down, so no byte passes under the unverified key');
  });

  t.test('an unverified key that is not in use is deleted and the connection keeps working', async (t) => {
    const key = testKey({ peer: host });
    const listener = await listenAo(t, { host, keys: [key] });
    const accepted = nextConnection(t, listener.server);
    const client = await connectAoSocket(t, { host, port: listener.port, keys: [mirrorKey(key, host)], timeoutMs: 5_000 });
    const server = await accepted;
    let thrown: ReadbackError | undefined;
    try {
      loadAddon().addKey(socketFd(client), { ...unverifiedCurrentKey(), setCurrent: false });
    } catch (err) {
      thrown = err as ReadbackError;
    }
    t.equal(thrown?.code, 'ERR_TCPAO_KEY_READBACK');
    t.equal(thrown?.keyRemoved, true, 'the key was removed again');
    t.equal(thrown?.shutDown, undefined, 'nothing was shut down');
    t.notOk(binding.getKeys(socketFd(client)).some((k) => k.sendId === 7), 'the kernel no longer holds it');
    const after = Buffer.from('still fine');
    t.same(await sendAndReceive(client, server, after), after, 'the connection still carries data');
  });
}
