/**
 * The shutdown chain: with the default shutdown_timeout_secs, a relay held
 * open through SIGTERM is reset, shutdown_finished is logged, the pid file is
 * removed and the process exits 1, all before the point where the forced
 * path is stated to be done (8 s + 1 s). The test kills the sidecar there,
 * as a supervisor with that grace would.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import t from 'tap';

import { GLOBAL_DEFAULTS } from '../../src/config/schema.js';
import { SHUTDOWN_FORCED_BOUND_MS } from '../../src/run.js';
import { LineProcess } from '../helpers/lab.js';

const FIXTURE = resolve(__dirname, '..', 'fixtures', 'shutdown-held-connection.js');

function listening(server: ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolvePort) => {
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const bound = server.address();
      resolvePort(typeof bound === 'object' && bound !== null ? bound.port : 0);
    });
  });
}

function connected(port: number): Promise<Socket> {
  return new Promise((resolveSocket, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolveSocket(socket));
    socket.once('error', reject);
  });
}

t.test('the default shutdown chain: sidecar (8 s) + forced path (1 s) stays below a supervisor grace of 12 s', async (t) => {
  t.equal(GLOBAL_DEFAULTS.shutdown_timeout_secs, 8, 'the sidecar default');
  t.equal(GLOBAL_DEFAULTS.shutdown_timeout_secs * 1_000 + SHUTDOWN_FORCED_BOUND_MS, 9_000, 'its forced path is done by 9 s');
});

t.test('a relay held open through SIGTERM is reset and the sidecar has finished before the forced-path bound', async (t) => {
  // The far end of the wire: echoes and never closes.
  const held = new Set<Socket>();
  const far = createServer((socket) => {
    held.add(socket);
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  t.teardown(() => {
    for (const socket of held) socket.destroy();
    far.close();
  });
  const wire = await connected(await listening(far));

  const probe = createServer();
  const localPort = await listening(probe);
  await new Promise<void>((resolveClose) => probe.close(() => resolveClose()));
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-shutdown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'initiator.pid');
  const config = join(dir, 'initiator.toml');
  writeFileSync(
    config,
    [
      '[global]',
      'tcp_keepalive = false',
      `pid_file = "${pidFile}"`,
      '[initiator]',
      `listen_plain = "127.0.0.1:${localPort}"`,
      'remote_ao = "127.0.0.1:1790"',
      '[[ao_policy]]',
      'name = "wire"',
      'peer_ip = "127.0.0.1"',
      'keyid = 1',
      'mac_alg = "hmac-sha256"',
      'key_source = "env:TCPAO_KEY"',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [FIXTURE, '--mode', 'initiator', '--config', config], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TCPAO_KEY: 'shutdown-bound-key-5678' },
    stdio: ['ignore', 'pipe', 'pipe', wire],
  });
  // The child holds its own copy of the wire socket.
  wire.destroy();
  const sidecar = new LineProcess('initiator', child);
  t.teardown(async () => {
    await sidecar.stop('SIGKILL');
  });
  await sidecar.waitFor((line) => line['event'] === 'listening', 30_000, 'listening line');
  // The pid file comes right after the listener, once the runtime is up.
  for (let tries = 0; tries < 200 && !existsSync(pidFile); tries += 1) await new Promise((resolveSleep) => setTimeout(resolveSleep, 50));
  t.ok(existsSync(pidFile), 'the pid file is written');

  const client = await connected(localPort);
  client.on('error', () => undefined);
  t.teardown(() => client.destroy());
  const echoed = new Promise<string>((resolveData) => client.once('data', (data: Buffer) => resolveData(data.toString())));
  client.write('held');
  t.equal(await echoed, 'held', 'the relay is open end to end');
  const clientReset = new Promise<void>((resolveClose) => client.once('close', () => resolveClose()));

  child.kill('SIGTERM');
  const supervisorKill = setTimeout(() => child.kill('SIGKILL'), GLOBAL_DEFAULTS.shutdown_timeout_secs * 1_000 + SHUTDOWN_FORCED_BOUND_MS);
  t.teardown(() => clearTimeout(supervisorKill));
  const exit = await sidecar.exited;
  t.same(exit, { code: 1, signal: null }, 'the sidecar exited 1 by itself, before the kill at 9 s');
  t.equal(sidecar.events('shutdown_forced').length, 1, 'it logged shutdown_forced');
  const finished = sidecar.events('shutdown_finished');
  t.same(finished.map((line) => line['clean']), [false], 'and shutdown_finished, not clean');
  t.notOk(finished[0]?.['watchdog'], 'the forced path finished without the watchdog');
  await clientReset;
  t.pass('the held relay was reset');
  t.notOk(existsSync(pidFile), 'the pid file is removed');
  t.match(sidecar.text.join(''), /tcpao-proxy: ERR_TCPAO_SHUTDOWN_TIMEOUT: /, 'one coded line on stderr');
});
