// Fail closed: every mismatch keeps the connection from ever forming, and the
// listener's TCP_AO_INFO counter for that reason rises. The kernel drops such
// SYNs silently, so deny cases use a short connect timeout. Needs TCP-AO.
import * as net from 'node:net';

import t, { type Test } from 'tap';

import { defaultBinding, type AoInfo, type AoKeySpec } from '../../src/native/index.js';
import {
  connectAoSocket,
  listenAo,
  listenPlain,
  mirrorKey,
  openFdCount,
  skipUnlessAo,
  testKey,
  type AoListener,
} from '../helpers/ao.js';
import { delay, pollUntil } from '../helpers/wait.js';

const binding = defaultBinding();

const DENY_TIMEOUT_MS = 1_500;
const host = '127.0.0.1';
const serverKey = testKey({ peer: host });
const goodClientKey = mirrorKey(serverKey, host);

/** An AO listener that counts the connections it accepts. */
async function guardedListener(t: Test): Promise<AoListener & { accepted: () => number }> {
  const listener = await listenAo(t, { host, keys: [serverKey] });
  let accepted = 0;
  listener.server.on('connection', (sock: net.Socket) => {
    accepted++;
    sock.destroy();
  });
  return { ...listener, accepted: () => accepted };
}

async function denied(
  t: Test,
  clientKey: AoKeySpec,
  counter: keyof Pick<AoInfo, 'pktBad' | 'pktKeyNotFound' | 'pktAoRequired'>,
): Promise<void> {
  const listener = await guardedListener(t);
  const before = binding.getAoInfo(listener.fd);
  const fdsBefore = openFdCount();
  await t.rejects(
    connectAoSocket(t, { host, port: listener.port, keys: [clientKey], timeoutMs: DENY_TIMEOUT_MS }),
    { code: 'ERR_TCPAO_CONNECT_TIMEOUT', message: /drops the SYN silently/ },
  );
  t.equal(openFdCount(), fdsBefore, 'the timed-out socket was closed');
  const after = binding.getAoInfo(listener.fd);
  t.ok(after[counter] > before[counter], `listener ${counter} rose (${before[counter]} -> ${after[counter]})`);
  t.equal(after.pktGood, before.pktGood, 'no segment verified');
  t.equal(listener.accepted(), 0, 'nothing was accepted');
}

if (skipUnlessAo(t)) {
  t.test('the matching key connects (control case)', async (t) => {
    const listener = await guardedListener(t);
    const sock = await connectAoSocket(t, { host, port: listener.port, keys: [goodClientKey], timeoutMs: 5_000 });
    t.ok(sock.remotePort === listener.port, 'connected');
  });

  t.test('wrong secret: timeout, pkt_bad', async (t) => {
    await denied(t, { ...goodClientKey, key: Buffer.from('not-the-shared-secret-000000') }, 'pktBad');
  });

  t.test('wrong key id (no listener key with that recvId): timeout, pkt_key_not_found', async (t) => {
    await denied(t, { ...goodClientKey, sendId: 55 }, 'pktKeyNotFound');
  });

  t.test('different maclen: timeout, pkt_bad', async (t) => {
    await denied(t, { ...goodClientKey, maclen: 16 }, 'pktBad');
  });

  t.test('unsigned client to an AO listener: never connects, pkt_ao_required', async (t) => {
    const listener = await guardedListener(t);
    const before = binding.getAoInfo(listener.fd);
    const plain = net.connect({ host, port: listener.port });
    t.teardown(() => plain.destroy());
    let connected = false;
    plain.on('connect', () => {
      connected = true;
    });
    plain.on('error', () => undefined);
    const rose = await pollUntil(() => binding.getAoInfo(listener.fd).pktAoRequired > before.pktAoRequired, 10_000);
    t.ok(rose, 'pkt_ao_required rose on the listener');
    await delay(DENY_TIMEOUT_MS);
    t.equal(connected, false, 'the plain client never connected');
    t.equal(listener.accepted(), 0, 'nothing was accepted');
  });

  t.test('AO client to a plain listener: timeout', async (t) => {
    const plain = await listenPlain(t, host);
    let accepted = 0;
    plain.server.on('connection', (sock: net.Socket) => {
      accepted++;
      sock.destroy();
    });
    const fdsBefore = openFdCount();
    await t.rejects(
      connectAoSocket(t, { host, port: plain.port, keys: [goodClientKey], timeoutMs: DENY_TIMEOUT_MS }),
      { code: 'ERR_TCPAO_CONNECT_TIMEOUT' },
    );
    t.equal(openFdCount(), fdsBefore, 'the timed-out socket was closed');
    t.equal(accepted, 0, 'the plain listener accepted nothing');
  });

  t.test('client key for another address: EKEYREJECTED at once', async (t) => {
    const listener = await guardedListener(t);
    const fdsBefore = openFdCount();
    await t.rejects(
      connectAoSocket(t, {
        host,
        port: listener.port,
        keys: [{ ...goodClientKey, peer: '10.255.0.1' }],
        timeoutMs: DENY_TIMEOUT_MS,
      }),
      { code: 'ERR_TCPAO_SYSCALL', sysCode: 'EKEYREJECTED', syscall: 'connect', message: /no TCP-AO key covers/ },
    );
    t.equal(openFdCount(), fdsBefore, 'no fd left behind');
    t.equal(listener.accepted(), 0);
  });
}
