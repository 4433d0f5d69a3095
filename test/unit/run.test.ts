/**
 * The composition root in process: the signal handlers it registers are gone
 * when the run ends, and a runtime that fails to start takes the proxy down
 * with it. The initiator starts without touching TCP-AO, so this runs on any
 * kernel; SIGTERM is delivered with process.emit, which runs the handlers only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { loadConfigText } from '../../src/config/load.js';
import { runSidecar } from '../../src/run.js';
import { initiatorSection, policyToml } from '../helpers/configs.js';
import { captureLog } from '../helpers/proxy.js';

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function listenerCounts(): Record<string, number> {
  return Object.fromEntries(SIGNALS.map((signal) => [signal, process.listenerCount(signal)]));
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const bound = probe.address();
      probe.close(() => resolvePort(typeof bound === 'object' && bound !== null ? bound.port : 0));
    });
  });
}

/** Resolves true when nothing listens on the port any more (it can be bound again). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const probe = createServer();
    probe.once('error', () => resolveFree(false));
    probe.listen({ host: '127.0.0.1', port }, () => probe.close(() => resolveFree(true)));
  });
}

function initiatorConfig(dir: string, listenPort: number, pidFile: string) {
  const text = [
    '[global]',
    'log_format = "json"',
    `pid_file = "${pidFile}"`,
    initiatorSection(`127.0.0.1:${listenPort}`, '192.0.2.1:1790'),
    policyToml({ name: 'wire', peer: '192.0.2.1', keySource: 'env:TCPAO_RUN_TEST_KEY' }),
  ].join('\n');
  return loadConfigText(text, { source: join(dir, 'initiator.toml'), baseDir: dir, env: { TCPAO_RUN_TEST_KEY: 'run-test-key-0123456789' } }).config;
}

t.test('a runtime that fails to start takes the proxy down and leaves no signal handler behind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const before = listenerCounts();
  const { log: logger, lines } = captureLog();
  const config = initiatorConfig(dir, port, join(dir, 'no-such-directory', 'initiator.pid'));

  await t.rejects(runSidecar(config, logger), { code: 'ERR_TCPAO_PID_FILE' }, 'the pid file error reaches the caller');
  t.same(listenerCounts(), before, 'SIGTERM, SIGINT and SIGHUP have the handlers they had before');
  t.ok(await portIsFree(port), 'the plain listener is closed');
  t.ok(
    lines.some((line) => line['event'] === 'listening'),
    'the proxy had started listening before the runtime failed',
  );
});

t.test('SIGTERM ends a clean run, and the handlers it registered are removed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-run-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const before = listenerCounts();
  const { log: logger, lines } = captureLog();
  const config = initiatorConfig(dir, port, join(dir, 'initiator.pid'));

  const running = runSidecar(config, logger);
  while (!lines.some((line) => line['event'] === 'listening')) await new Promise((wake) => setTimeout(wake, 20));
  t.equal(process.listenerCount('SIGTERM'), (before['SIGTERM'] ?? 0) + 1, 'one SIGTERM handler while running');
  t.equal(process.listenerCount('SIGHUP'), (before['SIGHUP'] ?? 0) + 1, 'one SIGHUP handler while running');

  process.emit('SIGTERM', 'SIGTERM');
  await t.resolves(running, 'a run with no open relay shuts down cleanly');
  t.same(listenerCounts(), before, 'every handler it registered is removed');
  t.ok(await portIsFree(port), 'the plain listener is closed');
  const finished = lines.find((line) => line['event'] === 'shutdown_finished');
  t.equal(finished?.['clean'], true, 'shutdown_finished says clean');
});
