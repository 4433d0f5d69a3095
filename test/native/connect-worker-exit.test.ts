// connectAo in a worker that is terminated while connects complete: once JS
// can no longer run, resolving the promise fails, and the fd the addon was
// about to hand over must be closed rather than leaked. Many connects are in
// flight when the worker is stopped, so some complete in its last loop
// iteration. Needs a kernel with TCP-AO (the lab).
import * as net from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import t from 'tap';

import { createAoListener } from '../../src/native';
import { mirrorKey, openFdCount, skipUnlessAo, testKey, waitFor } from '../helpers/ao';

const host = '127.0.0.1';
const ROUNDS = 8;
const IN_FLIGHT = 32;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const native = require(workerData.native);
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

if (skipUnlessAo(t)) {
  t.test('terminating a worker in the middle of connects leaves no fd open', async (t) => {
    const serverKey = testKey({ peer: host });
    const fd = createAoListener({ host, port: 0, keys: [serverKey] });
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
          native: join(__dirname, '..', '..', 'src', 'native.js'),
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
    await waitFor(() => openFdCount() <= baseline, 20_000);
    t.equal(openFdCount(), baseline, `no fd outlives ${ROUNDS} terminated workers with ${IN_FLIGHT} connects in flight`);
  });
}
