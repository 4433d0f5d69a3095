/**
 * A SIGHUP during start-up (before the reload handler exists) must not kill
 * the sidecar: it is held and handled as one reload once the sidecar runs.
 * The initiator starts without touching TCP-AO, so this runs on any kernel.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import t from 'tap';

import { LineProcess } from '../helpers/lab.js';

const FIXTURE = resolve(__dirname, '..', 'fixtures', 'hup-during-startup.js');

function freePort(): Promise<number> {
  return new Promise((resolvePort) => {
    const probe = createServer();
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const bound = probe.address();
      probe.close(() => resolvePort(typeof bound === 'object' && bound !== null ? bound.port : 0));
    });
  });
}

t.test('a SIGHUP during start-up is held and handled as a reload once the sidecar runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-hup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'initiator.toml');
  writeFileSync(
    config,
    [
      '[global]',
      'log_format = "json"',
      `pid_file = "${join(dir, 'initiator.pid')}"`,
      '[initiator]',
      `listen_plain = "127.0.0.1:${await freePort()}"`,
      'remote_ao = "192.0.2.1:1790"',
      '[[ao_policy]]',
      'name = "wire"',
      'peer_ip = "192.0.2.1"',
      'keyid = 1',
      'mac_alg = "hmac-sha256"',
      'key_source = "env:TCPAO_KEY"',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [FIXTURE, '--mode', 'initiator', '--config', config], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TCPAO_KEY: 'startup-hangup-key-1234' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sidecar = new LineProcess('initiator', child);
  t.teardown(async () => {
    await sidecar.stop('SIGKILL');
  });
  // Held until the runtime is up (reload_held), or, when Node dispatches it after that, handled by the runtime itself.
  const held = await sidecar.waitFor((line) => line['event'] === 'reload_requested', 30_000, 'reload_requested line');
  const applied = await sidecar.waitFor((line) => line['event'] === 'reload_applied' || line['event'] === 'reload_failed', 30_000, 'reload result');
  t.equal(applied['event'], 'reload_applied', 'and the reload it asked for ran');
  t.ok(sidecar.lines.findIndex((line) => line['event'] === 'listening') < sidecar.lines.indexOf(held), 'after the listener was up');
  t.equal(sidecar.running(), true, 'the sidecar is still running');
  const exit = await sidecar.stop('SIGTERM');
  t.same(exit, { code: 0, signal: null }, 'and shuts down cleanly');
});
