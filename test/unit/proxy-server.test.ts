/**
 * The proxy server on the host, with a connection handler that dials a plain
 * local echo server: the per-peer and global connection caps, the refusal
 * counters /metrics shows, and accept errors that must not end the process.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';

import pino from 'pino';
import t, { type Test } from 'tap';

import type { AoInfo } from '../../src/native';
import type { RelaySettings } from '../../src/policy/plan.js';
import { ConnectionRefused, createProxyServer, type ConnectionHandler, type ProxyServer } from '../../src/proxy/server';

type Line = Record<string, unknown>;

function capture(): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Line);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const AO_INFO: AoInfo = {
  aoRequired: true,
  acceptIcmps: false,
  currentKey: 1,
  rnextKey: 1,
  pktGood: 0n,
  pktBad: 0n,
  pktKeyNotFound: 0n,
  pktAoRequired: 0n,
  pktDroppedIcmp: 0n,
};

function settings(limits: { maxConnections: number; maxConnectionsPerPeer: number }): RelaySettings {
  return {
    listenBacklog: 16,
    idleTimeoutMs: 0,
    connectTimeoutMs: 2_000,
    keepalive: { enabled: false, idleSecs: 1, intervalSecs: 1, probes: 1 },
    ...limits,
  };
}

function listen(t: Test, server: Server): Promise<number> {
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) => {
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const bound = server.address();
      resolve(typeof bound === 'object' && bound !== null ? bound.port : 0);
    });
  });
}

async function echoServer(t: Test): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
  });
  return listen(t, server);
}

/** Dials the echo server for every accepted client; `refuse` turns a client port into a handler refusal. */
function echoHandler(port: number, refuse?: (client: Socket) => ConnectionRefused | undefined): ConnectionHandler {
  return {
    readAoInfo: () => AO_INFO,
    open: (client) =>
      new Promise((resolve, reject) => {
        const refusal = refuse?.(client);
        if (refusal !== undefined) {
          reject(refusal);
          return;
        }
        const upstream = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () =>
          resolve({ upstream, wire: upstream, wireFd: -1, context: {} }),
        );
        upstream.once('error', reject);
      }),
  };
}

async function startProxy(
  t: Test,
  limits: { maxConnections: number; maxConnectionsPerPeer: number },
  refuse?: (client: Socket) => ConnectionRefused | undefined,
): Promise<{ proxy: ProxyServer; port: number; lines: Line[] }> {
  const { log, lines } = capture();
  const proxy = createProxyServer({
    relay: settings(limits),
    log,
    handler: echoHandler(await echoServer(t), refuse),
    binding: { setKeepalive: () => undefined, socketFd: () => -1 },
  });
  t.teardown(() => proxy.sessions.abortAll('shutdown'));
  return { proxy, port: await listen(t, proxy.server), lines };
}

/** Resolves once the client got its bytes echoed through the proxy (true) or was cut off (false). */
function relayed(t: Test, port: number, localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const client = connect({ host: '127.0.0.1', port, localAddress }, () => client.write('ping'));
    t.teardown(() => client.destroy());
    client.on('data', () => resolve(true));
    client.on('error', () => resolve(false));
    client.on('close', () => resolve(false));
  });
}

t.test('one client address cannot take more than max_connections_per_peer slots; others still get in', async (t) => {
  const { proxy, port, lines } = await startProxy(t, { maxConnections: 3, maxConnectionsPerPeer: 2 });
  t.equal(await relayed(t, port, '127.0.0.1'), true, 'first connection from 127.0.0.1 relays');
  t.equal(await relayed(t, port, '127.0.0.1'), true, 'second one too');
  t.equal(await relayed(t, port, '127.0.0.1'), false, 'the third from the same address is refused');
  t.equal(await relayed(t, port, '127.0.0.2'), true, 'another address still gets the last free slot');
  t.equal(await relayed(t, port, '127.0.0.3'), false, 'and then the global cap refuses the next');
  const refused = lines.filter((line) => line['event'] === 'connection_refused').map((line) => line['reason']);
  t.same(refused, ['max_connections_per_peer', 'max_connections'], 'each refusal is logged with its reason');
  t.equal(proxy.refusals().get('max_connections_per_peer'), 1, 'and counted by reason');
  t.equal(proxy.refusals().get('max_connections'), 1);
  t.equal(proxy.refusals().get('unknown_peer'), 0, 'reasons that did not happen are there with 0');
});

t.test('a slot is given back when the connection ends', async (t) => {
  const { proxy, port } = await startProxy(t, { maxConnections: 10, maxConnectionsPerPeer: 1 });
  t.equal(await relayed(t, port, '127.0.0.1'), true);
  t.equal(await relayed(t, port, '127.0.0.1'), false, 'the second concurrent one is refused');
  const [session] = proxy.sessions.list();
  session?.relay.abort('shutdown');
  await session?.relay.done;
  t.equal(await relayed(t, port, '127.0.0.1'), true, 'after the first ends the address may connect again');
});

t.test('refusals by the connection handler are counted by their reason', async (t) => {
  const reasons = ['not_authenticated', 'unknown_peer', 'wire_connect_timeout', 'unknown_peer'];
  let next = 0;
  const { proxy, port } = await startProxy(t, { maxConnections: 10, maxConnectionsPerPeer: 10 }, () => {
    const reason = reasons[next++];
    return reason === undefined ? undefined : new ConnectionRefused(reason, `refused: ${reason}`);
  });
  for (let index = 0; index < reasons.length; index += 1) t.equal(await relayed(t, port, '127.0.0.1'), false);
  t.equal(proxy.refusals().get('not_authenticated'), 1);
  t.equal(proxy.refusals().get('unknown_peer'), 2);
  t.equal(proxy.refusals().get('wire_connect_timeout'), 1);
  t.equal(await relayed(t, port, '127.0.0.1'), true, 'refused connections gave their per-peer slots back');
});

t.test('an accept error the listener reports is logged and counted, and the proxy keeps serving', async (t) => {
  const { proxy, port, lines } = await startProxy(t, { maxConnections: 10, maxConnectionsPerPeer: 10 });
  const error = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept', errno: -24 });
  t.doesNotThrow(() => proxy.server.emit('error', error), 'net.Server reports accept errors as "error": it must not throw');
  const logged = lines.find((line) => line['event'] === 'accept_error');
  t.equal(logged?.['code'], 'EMFILE', 'logged with the errno name');
  t.equal(proxy.acceptErrors(), 1, 'counted');
  t.equal(proxy.server.listening, true, 'still listening');
  t.equal(await relayed(t, port, '127.0.0.1'), true, 'and the next connection relays');
});
