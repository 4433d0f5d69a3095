/**
 * The proxy server on the host, with the plain test handler dialling a local
 * echo app: the per-peer and global connection caps, the refusal
 * counters /metrics shows, and accept errors that must not end the process.
 */
import { connect, type Socket } from 'node:net';

import t, { type Test } from 'tap';

import { ConnectionRefused, type ConnectionHandler } from '../../src/proxy/server.js';
import { echoApp, startPlainProxy, type RunningProxy } from '../helpers/proxy.js';

/** The plain handler to an echo app; `refuse` turns a client into a handler refusal before the app is dialled. */
async function startProxy(
  t: Test,
  limits: { maxConnections: number; maxConnectionsPerPeer: number },
  refuse?: (client: Socket) => ConnectionRefused | undefined,
): Promise<RunningProxy> {
  const refusing = (handler: ConnectionHandler): ConnectionHandler => ({
    readAoInfo: (fd) => handler.readAoInfo(fd),
    open: async (client, id) => {
      const refusal = refuse?.(client);
      if (refusal !== undefined) throw refusal;
      return handler.open(client, id);
    },
  });
  return startPlainProxy(t, (await echoApp(t)).port, limits, refusing);
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
