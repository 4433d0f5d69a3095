/**
 * A plain TCP relay built from the sidecar's own relay module, for host
 * benchmarks only (the shipped CLI never runs without TCP-AO). It sets up each
 * connection the way src/proxy/server.ts and the terminator do: a paused
 * accept with half-open allowed, a paused half-open upstream, the production
 * socket settings and idle timeout, then startRelay().
 *
 * Argument: one JSON object {listenHost, targetHost, targetPort, highWaterMark?, idleTimeoutMs?}.
 * The optional fields are what-if knobs: highWaterMark (bytes) for both legs
 * instead of Node's default, idleTimeoutMs instead of the config default (0 = off).
 * Prints {"event":"listening","port":N}.
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

import { GLOBAL_DEFAULTS } from '../src/config/schema';
import { defaultBinding } from '../src/native';
import { relaySettingsFrom, type RelaySettings } from '../src/policy/plan.js';
import { startRelay } from '../src/proxy/relay';
import { applySocketSettings } from '../src/proxy/server';

interface HarnessArgs {
  readonly listenHost: string;
  readonly targetHost: string;
  readonly targetPort: number;
  readonly highWaterMark?: number;
  readonly idleTimeoutMs?: number;
}

const defaults: RelaySettings = {
  ...relaySettingsFrom(GLOBAL_DEFAULTS),
  maxConnections: Number.MAX_SAFE_INTEGER,
  maxConnectionsPerPeer: Number.MAX_SAFE_INTEGER,
};

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as HarnessArgs;
  const settings: RelaySettings = { ...defaults, idleTimeoutMs: args.idleTimeoutMs ?? defaults.idleTimeoutMs };
  const waterMark = args.highWaterMark === undefined ? {} : { highWaterMark: args.highWaterMark };
  let active = 0;

  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true, ...waterMark }, (client) => {
    client.on('error', () => undefined);
    const upstream: Socket = connect({
      host: args.targetHost,
      port: args.targetPort,
      allowHalfOpen: true,
      noDelay: true,
      ...waterMark,
    });
    upstream.pause();
    const timer = setTimeout(() => upstream.destroy(new Error('upstream connect timed out')), settings.connectTimeoutMs);
    upstream.once('error', () => {
      clearTimeout(timer);
      client.resetAndDestroy();
    });
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.removeAllListeners('error');
      applySocketSettings(client, settings, defaultBinding());
      applySocketSettings(upstream, settings, defaultBinding());
      active += 1;
      void startRelay(client, upstream, { idleTimeoutMs: settings.idleTimeoutMs }).done.then(() => {
        active -= 1;
      });
    });
  });
  server.listen({ host: args.listenHost, port: 0, backlog: 4_096 });
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no port');
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: address.port })}\n`);
  process.on('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify({ event: 'stopping', active })}\n`);
    process.exit(0);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`relay harness: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
