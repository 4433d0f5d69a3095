// connectAo in a worker that is terminated while connects complete: once JS
// can no longer run, resolving the promise fails, and the fd the addon was
// about to hand over must be closed rather than leaked. Many connects are in
// flight when the worker is stopped, so some complete in its last loop
// iteration. Needs a kernel with TCP-AO (the lab).
//
// The first test runs anywhere: connects that fail at once (no TCP-AO on the
// host, an unknown VRF ifindex in the lab) throw from the addon while the
// worker is being terminated. node-addon-api then cannot throw into JS, and
// without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS it rethrew a C++ exception
// out of the callback, which aborted the whole process.
import * as net from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import t from 'tap';

import { defaultBinding } from '../../src/native/index.js';
import { mirrorKey, openFdCount, skipUnlessAo, testKey } from '../helpers/ao.js';
import { pollUntil } from '../helpers/wait.js';

const binding = defaultBinding();

const host = '127.0.0.1';
const ROUNDS = 8;
const IN_FLIGHT = 32;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const native = require(workerData.native).defaultBinding();
let completed = 0;
const key = { ...workerData.key, key: Buffer.from(workerData.secret) };
async function connectForever() {
  for (;;) {
    try {
      const fd = await native.connectAo({ host: workerData.host, port: workerData.port, keys: [key], timeoutMs: 5000 });
      native.closeFd(fd);
    } catch {}
    completed += 1;
    if (completed === workerData.reportAfter) parentPort.postMessage('busy');
  }
}
for (let i = 0; i < workerData.inFlight; i++) connectForever();
`;

const FAILING_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const native = require(workerData.native).defaultBinding();
let failed = 0;
async function connectForever() {
  for (;;) {
    try {
      const fd = await native.connectAo({ host: workerData.host, port: workerData.port, keys: [workerData.key], timeoutMs: 5000 });
      native.closeFd(fd);
      parentPort.postMessage({ connected: true });
    } catch (err) {
      if (failed === 0) parentPort.postMessage({ code: err.code, errno: err.errno, syscall: err.syscall });
      failed += 1;
      if (failed === workerData.reportAfter) parentPort.postMessage('busy');
    }
  }
}
for (let i = 0; i < workerData.inFlight; i++) connectForever();
`;

t.test('terminating a worker while connectAo throws leaves the process running', async (t) => {
  const errors: unknown[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const worker = new Worker(FAILING_WORKER, {
      eval: true,
      workerData: {
        native: join(__dirname, '..', '..', 'src', 'native', 'index.js'),
        host,
        port: 9,
        // No such device: the kernel refuses the key (ENODEV), or has no TCP-AO at all.
        key: { ...testKey({ peer: host }), key: Buffer.from('worker-exit-secret'), ifindex: 999_999 },
        inFlight: IN_FLIGHT,
        reportAfter: IN_FLIGHT * 4,
      },
    });
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (message: unknown) => (message === 'busy' ? resolve() : errors.push(message)));
      worker.once('error', reject);
    });
    await worker.terminate();
  }
  t.equal(errors.length, ROUNDS, 'each worker saw its connects fail, none connected');
  for (const err of errors) {
    t.match(err, { code: /^ERR_TCPAO_/, errno: Number, syscall: /^setsockopt\(TCP_AO_ADD_KEY\)$/ }, 'the error reached JS with code, errno and syscall');
  }
  t.pass(`this process outlived ${ROUNDS} workers terminated while their connects threw`);
});

if (skipUnlessAo(t)) {
  t.test('terminating a worker in the middle of connects leaves no fd open', async (t) => {
    const serverKey = testKey({ peer: host });
    const fd = binding.createAoListener({ host, port: 0, keys: [serverKey] });
    const server = net.createServer((sock) => sock.destroy());
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise<void>((resolve) => server.listen({ fd }, () => resolve()));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('listener has no port');
    const clientKey = mirrorKey(serverKey, host);
    const { key: secret, ...rest } = clientKey;

    const baseline = openFdCount();
    for (let round = 0; round < ROUNDS; round++) {
      const worker = new Worker(WORKER, {
        eval: true,
        workerData: {
          native: join(__dirname, '..', '..', 'src', 'native', 'index.js'),
          host,
          port: address.port,
          key: rest,
          secret: Buffer.from(secret as Uint8Array),
          inFlight: IN_FLIGHT,
          reportAfter: IN_FLIGHT * 2,
        },
      });
      await new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      });
      await worker.terminate();
    }
    // Accepted sockets are destroyed asynchronously; give them time to go.
    await pollUntil(() => openFdCount() <= baseline, 20_000);
    t.equal(openFdCount(), baseline, `no fd outlives ${ROUNDS} terminated workers with ${IN_FLIGHT} connects in flight`);
  });
}
