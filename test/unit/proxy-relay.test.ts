/**
 * The relay path on plain TCP, so it runs on any host: createProxyServer with
 * the plain test handler in front of the addon's relay thread (native-relay.ts,
 * native/relay.cc): byte counting and half-close, resets, the idle timeout, the
 * connection caps and the shutdown drain of SessionTracker. The end-to-end
 * suites cover the same path with TCP-AO in the kernel lab.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

import t, { type Test } from 'tap';

import type { ConnectionHandler } from '../../src/proxy/server.js';
import { defaultRelayEngine, type NativeRelayEngine } from '../../src/native/index.js';
import { appServer, echoApp, startPlainProxy, type LogLine } from '../helpers/proxy.js';
import { delay, pollUntil, waitForValue } from '../helpers/wait.js';

const WAIT_LIMIT_MS = 10_000;

/** A client of the proxy and whether the proxy reset it, known from the first event on. */
interface Client {
  readonly socket: Socket;
  /** Resolves at close: true when the connection was reset rather than closed with a FIN. */
  readonly cut: Promise<boolean>;
}

/** Connects to the proxy (half-open allowed, like a BGP or BMP speaker); destroyed at teardown. */
function dialRaw(t: Test, port: number, localAddress = '127.0.0.1'): Client {
  const socket = connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen: true });
  t.teardown(() => socket.destroy());
  let reset = false;
  socket.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ECONNRESET') reset = true;
  });
  const cut = new Promise<boolean>((resolve) => socket.once('close', () => resolve(reset)));
  return { socket, cut };
}

/** A client the proxy let through the handshake. */
async function dial(t: Test, port: number, localAddress = '127.0.0.1'): Promise<Client> {
  const client = dialRaw(t, port, localAddress);
  if (client.socket.connecting) await once(client.socket, 'connect');
  return client;
}

/** Resolves once the proxy cut the client; true when it was reset. */
function cutOff(client: Client): Promise<boolean> {
  client.socket.resume();
  return client.cut;
}

/** Everything the socket reads until the peer's FIN. */
async function readToEnd(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  if (!socket.readableEnded) await once(socket, 'end');
  return Buffer.concat(chunks);
}

/** Exactly `length` bytes from the socket; rejects, naming how many came, if it closes first. */
function readBytes(socket: Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onClose = () => reject(new Error(`the socket closed after ${received} of ${length} bytes`));
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < length) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

function eventLine(lines: LogLine[], event: string, conn: number): Promise<LogLine> {
  return waitForValue(
    `${event} of connection ${conn}`,
    () => lines.find((line) => line['event'] === event && line['conn'] === conn),
    WAIT_LIMIT_MS,
  );
}

t.test('bytes cross both ways and the closing log line counts each direction', async (t) => {
  const request = Buffer.alloc(1_000, 'c');
  const reply = Buffer.alloc(2_500, 'u');
  const app = await appServer(t, (socket) => {
    void readBytes(socket, request.length).then((received) => {
      socket.write(received.equals(request) ? reply : Buffer.from('wrong request'));
      socket.end();
    });
  });
  const { port, lines } = await startPlainProxy(t, app.port);
  const { socket: client } = await dial(t, port);
  client.write(request);
  t.same(await readToEnd(client), reply, 'the app got the request intact and its reply came back');
  client.end();
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'closed', 'a FIN each way is a clean close');
  t.equal(closed['bytesClientToUpstream'], request.length, 'bytes client to app');
  t.equal(closed['bytesUpstreamToClient'], reply.length, 'bytes app to client');
  t.equal(closed['ao'], undefined, 'a plain leg reports no AO counters');
  t.ok(
    lines.findIndex((line) => line['event'] === 'relay_started') < lines.indexOf(closed),
    'relay_started comes before connection_closed',
  );
});

t.test('the client half-closes first: its FIN reaches the app, which can still answer', async (t) => {
  const app = await appServer(t, (socket) => {
    void readToEnd(socket).then((received) => socket.end(`got ${received.toString()} and your FIN`));
  });
  const { port, lines } = await startPlainProxy(t, app.port);
  const { socket: client } = await dial(t, port);
  client.end('request');
  t.equal((await readToEnd(client)).toString(), 'got request and your FIN', 'the answer arrived after the client FIN');
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'closed');
  t.equal(closed['bytesClientToUpstream'], 'request'.length);
  t.equal(closed['bytesUpstreamToClient'], 'got request and your FIN'.length);
});

t.test('the app half-closes first: the client still gets to send after the app FIN', async (t) => {
  let appReceived: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
  const app = await appServer(t, (socket) => {
    appReceived = readToEnd(socket);
    socket.end('banner');
  });
  const { port, lines } = await startPlainProxy(t, app.port);
  const { socket: client } = await dial(t, port);
  t.equal((await readToEnd(client)).toString(), 'banner', 'the client read the app data, then its FIN');
  client.end('late words');
  t.equal((await appReceived).toString(), 'late words', 'the app got what the client sent after the app FIN');
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'closed');
  t.equal(closed['bytesClientToUpstream'], 'late words'.length);
  t.equal(closed['bytesUpstreamToClient'], 'banner'.length);
});

t.test('a connection without traffic either way is closed by the idle timeout', async (t) => {
  const app = await echoApp(t);
  const { port, lines } = await startPlainProxy(t, app.port, { idleTimeoutMs: 100 });
  const client = await dial(t, port);
  client.socket.write('one');
  t.equal((await readBytes(client.socket, 3)).toString(), 'one', 'traffic flows before the connection goes quiet');
  t.equal(await cutOff(client), true, 'the quiet connection is reset, so the client knows it was cut');
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'idle_timeout');
  t.equal(closed['bytesClientToUpstream'], 3);
  t.equal(closed['bytesUpstreamToClient'], 3);
});

t.test('max_connections refuses the connection past the cap before it reaches the app', async (t) => {
  const app = await echoApp(t);
  const { proxy, port, lines } = await startPlainProxy(t, app.port, { maxConnections: 2 });
  for (const conn of [1, 2]) {
    await dial(t, port);
    await eventLine(lines, 'relay_started', conn);
  }
  const extra = dialRaw(t, port);
  t.equal(await cutOff(extra), true, 'the extra connection is reset');
  const refused = await eventLine(lines, 'connection_refused', 3);
  t.equal(refused['reason'], 'max_connections');
  t.equal(refused['limit'], 2);
  t.equal(app.accepted.length, 2, 'the app never saw the refused connection');
  t.equal(proxy.sessions.size, 2, 'the two held connections still relay');
});

t.test('max_connections_per_peer refuses a second connection from the same address only', async (t) => {
  const app = await echoApp(t);
  const { port, lines } = await startPlainProxy(t, app.port, { maxConnectionsPerPeer: 1 });
  await dial(t, port, '127.0.0.1');
  await eventLine(lines, 'relay_started', 1);
  const second = dialRaw(t, port, '127.0.0.1');
  t.equal(await cutOff(second), true, 'the second connection from 127.0.0.1 is reset');
  const refused = await eventLine(lines, 'connection_refused', 2);
  t.equal(refused['reason'], 'max_connections_per_peer');
  t.equal(refused['address'], '127.0.0.1');
  const { socket: other } = await dial(t, port, '127.0.0.2');
  other.write('hi');
  t.equal((await readBytes(other, 2)).toString(), 'hi', 'another address still relays');
  t.equal(app.accepted.length, 2, 'the app saw the two allowed connections only');
});

t.test('shutdown: the drain deadline passes with a held connection, which is then destroyed', async (t) => {
  const app = await echoApp(t);
  const { proxy, port, lines } = await startPlainProxy(t, app.port);
  const held = await dial(t, port);
  await eventLine(lines, 'relay_started', 1);
  proxy.stopAccepting();
  t.equal(proxy.server.listening, false, 'no new connection is accepted once shutdown starts');
  t.equal(await proxy.sessions.drain(50), false, 'a connection nobody closes does not drain by itself');
  proxy.sessions.abortAll('shutdown');
  t.equal(await cutOff(held), true, 'the held connection is reset, so its client knows data was cut');
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'shutdown');
  t.equal(await proxy.sessions.drain(WAIT_LIMIT_MS), true, 'after the reset nothing is left to drain');
  t.equal(proxy.sessions.size, 0);
});

t.test('shutdown: a connection that ends by itself during the drain lets it finish clean', async (t) => {
  const app = await appServer(t, (socket) => {
    void readToEnd(socket).then(() => socket.end());
  });
  const { proxy, port, lines } = await startPlainProxy(t, app.port);
  const { socket: client } = await dial(t, port);
  await eventLine(lines, 'relay_started', 1);
  proxy.stopAccepting();
  const drained = proxy.sessions.drain(WAIT_LIMIT_MS);
  client.end();
  t.equal(await drained, true, 'the drain resolves true when every session ended by itself');
  t.equal((await eventLine(lines, 'connection_closed', 1))['reason'], 'closed');
});

t.test('shutdown: connections still being set up are reset and refused', async (t) => {
  const app = await echoApp(t);
  let opened = 0;
  const stall = (handler: ConnectionHandler): ConnectionHandler => ({
    readAoInfo: (fd) => handler.readAoInfo(fd),
    open: (client, id) => {
      opened += 1;
      // Never settles by itself: abortPending must reset the client.
      return new Promise((_resolve, reject) => client.once('close', () => reject(new Error(`client ${id} reset`))));
    },
  });
  const { proxy, port, lines } = await startPlainProxy(t, app.port, {}, stall);
  const client = await dial(t, port);
  t.ok(await pollUntil(() => opened === 1, WAIT_LIMIT_MS), 'the handler is setting the connection up');
  t.equal(proxy.pendingCount(), 1);
  proxy.stopAccepting();
  proxy.abortPending();
  t.equal(await cutOff(client), true, 'the client in setup is reset');
  t.equal((await eventLine(lines, 'connection_refused', 1))['reason'], 'internal_error');
  t.equal(proxy.pendingCount(), 0);
  t.equal(app.accepted.length, 0, 'the app never saw it');
});

t.test("the addon's relay thread holds the connection on fds of its own", async (t) => {
  const app = await echoApp(t);
  const { proxy, port, lines } = await startPlainProxy(t, app.port);
  const before = defaultRelayEngine().stats().connections;
  const { socket: client } = await dial(t, port);
  await eventLine(lines, 'relay_started', 1);
  const [session] = proxy.sessions.list();
  t.ok(session !== undefined && session.relay.legFds.client >= 0 && session.relay.legFds.upstream >= 0, 'both legs are fds the relay holds');
  t.ok(await pollUntil(() => defaultRelayEngine().stats().connections === before + 1, WAIT_LIMIT_MS), 'the relay thread counts the connection');
  client.end();
  await eventLine(lines, 'connection_closed', 1);
  t.ok(await pollUntil(() => defaultRelayEngine().stats().connections === before, WAIT_LIMIT_MS), 'and lets it go at the end');
});

t.test('a connection the relay cannot take is refused: the client and the app leg are reset, no byte crosses', async (t) => {
  let appBytes = 0;
  const app = await appServer(t, (socket) => socket.on('data', (chunk: Buffer) => (appBytes += chunk.length)));
  const refusing: NativeRelayEngine = {
    ...defaultRelayEngine(),
    add: () => {
      throw Object.assign(new Error('relayAdd failed: EMFILE'), { code: 'EMFILE' });
    },
  };
  const { proxy, port, lines } = await startPlainProxy(t, app.port, {}, undefined, { nativeRelay: refusing });
  const client = await dial(t, port);
  client.socket.write('must not reach the app');
  t.equal(await cutOff(client), true, 'the client is reset');
  const refused = await eventLine(lines, 'connection_refused', 1);
  t.equal(refused['reason'], 'relay_unavailable');
  t.equal(refused['code'], 'EMFILE', 'the cause is named');
  t.equal(proxy.refusals().get('relay_unavailable'), 1, 'and counted');
  t.ok(await pollUntil(() => app.accepted[0]?.destroyed === true, WAIT_LIMIT_MS), 'the app leg is closed');
  t.equal(appBytes, 0, 'the app got no byte');
  t.notOk(lines.some((line) => line['event'] === 'relay_started'), 'nothing was relayed');
  t.equal(proxy.sessions.size, 0);
});

t.test('bytes Node read on either leg before the relay started are relayed first, in order', async (t) => {
  const app = await appServer(t, (socket) => {
    socket.write('banner from the app;');
    void readToEnd(socket).then((received) => socket.end(`app got: ${received.toString()}`));
  });
  // Hold the connection in setup until Node has read ahead on both legs, as
  // it does when an app (a BGP speaker's OPEN) or a client speaks first.
  const readAhead = (handler: ConnectionHandler): ConnectionHandler => ({
    readAoInfo: (fd) => handler.readAoInfo(fd),
    open: async (client, id) => {
      const legs = await handler.open(client, id);
      // Both legs are paused until now; read(0) makes Node start reading ahead.
      client.read(0);
      legs.upstream.read(0);
      const ready = await pollUntil(() => client.readableLength > 0 && legs.upstream.readableLength > 0, WAIT_LIMIT_MS, 5);
      if (!ready) throw new Error('Node read nothing ahead on one of the legs');
      return legs;
    },
  });
  const { port, lines } = await startPlainProxy(t, app.port, {}, readAhead);
  const { socket: client } = await dial(t, port);
  client.write('client speaks first;');
  await eventLine(lines, 'relay_started', 1);
  client.end(' and more');
  t.equal(
    (await readToEnd(client)).toString(),
    'banner from the app;app got: client speaks first; and more',
    'both directions kept every byte, the read-ahead ones first',
  );
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'closed');
  t.equal(closed['bytesClientToUpstream'], 'client speaks first; and more'.length, 'read-ahead bytes are counted');
});

t.test('16 MiB each way through an echo app arrive intact and are counted', async (t) => {
  // Filled before the connection opens: under valgrind the loop blocks for longer than the connect timeout.
  const payload = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
  const app = await echoApp(t);
  const { port, lines } = await startPlainProxy(t, app.port);
  const { socket: client } = await dial(t, port);
  const echoed = readBytes(client, payload.length);
  client.write(payload);
  const back = await echoed.catch((error: Error) => {
    t.fail(`${error.message}; the proxy logged ${JSON.stringify(lines.filter((line) => line['conn'] === 1))}`);
    return Buffer.alloc(0);
  });
  t.ok(back.equals(payload), 'the echo came back byte for byte, in order');
  client.end();
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'closed');
  t.equal(closed['bytesClientToUpstream'], payload.length);
  t.equal(closed['bytesUpstreamToClient'], payload.length);
});

t.test('an app that resets its leg makes the proxy reset the client (upstream_error)', async (t) => {
  const app = await appServer(t, (socket) => {
    socket.once('data', () => socket.resetAndDestroy());
  });
  const { port, lines } = await startPlainProxy(t, app.port);
  const client = await dial(t, port);
  client.socket.write('go');
  t.equal(await cutOff(client), true, 'the client is reset, not closed with a FIN');
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'upstream_error');
  t.equal(typeof closed['error'], 'string', 'the error is in the closing line');
});

t.test('an app that sends and then resets makes the proxy reset the client, not close it with a FIN', async (t) => {
  const app = await appServer(t, (socket) => {
    socket.once('data', () => socket.write(Buffer.alloc(1_024, 7), () => socket.resetAndDestroy()));
  });
  const { port, lines } = await startPlainProxy(t, app.port);
  const { socket: client } = await dial(t, port);
  // libuv may report a reset right behind data as EOF; a write after it
  // fails on a reset socket and goes through after a FIN.
  client.once('end', () => client.write('after the end'));
  const ending = new Promise<string>((resolve) => {
    client.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    void delay(WAIT_LIMIT_MS).then(() => resolve('no reset'));
  });
  client.resume();
  client.write('go');
  t.match(await ending, /^(ECONNRESET|EPIPE)$/, 'the client learns that data was cut');
  t.equal((await eventLine(lines, 'connection_closed', 1))['reason'], 'upstream_error');
});

t.test('a client that resets makes the proxy reset the app leg (client_error)', async (t) => {
  let appCut: Promise<boolean> = Promise.resolve(false);
  const app = await appServer(t, (socket) => {
    appCut = new Promise((resolve) => {
      let reset = false;
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNRESET') reset = true;
      });
      socket.once('close', () => resolve(reset));
    });
    socket.resume();
  });
  const { port, lines } = await startPlainProxy(t, app.port);
  const { socket: client } = await dial(t, port);
  await eventLine(lines, 'relay_started', 1);
  client.resetAndDestroy();
  const closed = await eventLine(lines, 'connection_closed', 1);
  t.equal(closed['reason'], 'client_error');
  t.equal(await appCut, true, 'the app leg was reset too');
});
