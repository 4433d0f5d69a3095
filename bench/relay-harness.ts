/**
 * A plain TCP relay built from the sidecar's own proxy server, for host
 * benchmarks only (the shipped CLI never runs without TCP-AO): createProxyServer
 * with the plain test handler, so every connection takes the production accept
 * path (caps, paused half-open legs, socket settings, idle timeout, the native relay).
 *
 * Argument: one JSON object {listenHost, targetHost, targetPort, highWaterMark?, idleTimeoutMs?, relaySplice?}.
 * The optional fields are what-if knobs: highWaterMark (bytes) for both legs
 * instead of Node's default, idleTimeoutMs instead of the config default (0 = off),
 * relaySplice (false to copy bulk through a buffer instead of splicing it).
 * Prints {"event":"listening","port":N}.
 */
import { once } from 'node:events';

import pino from 'pino';

import { GLOBAL_DEFAULTS } from '../src/config/schema.js';
import { defaultBinding, defaultRelayEngine } from '../src/native/index.js';
import { relaySettingsFrom, type RelaySettings } from '../src/policy/plan.js';
import { createProxyServer } from '../src/proxy/server.js';
import { createPlainHandler } from '../test/helpers/plain-handler.js';

interface HarnessArgs {
  readonly listenHost: string;
  readonly targetHost: string;
  readonly targetPort: number;
  readonly highWaterMark?: number;
  readonly idleTimeoutMs?: number;
  /** False copies every byte through a buffer instead of splicing bulk directions. */
  readonly relaySplice?: boolean;
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
  const proxy = createProxyServer({
    relay: settings,
    // Silent, as before the harness used the proxy server: the lab part measures the sidecar's per-connection logging.
    log: pino({ level: 'silent' }),
    handler: createPlainHandler({ host: args.targetHost, port: args.targetPort }, { ...settings, ...waterMark }),
    binding: defaultBinding(),
    ...waterMark,
    ...(args.relaySplice === undefined ? {} : { nativeRelay: defaultRelayEngine({ splice: args.relaySplice }) }),
  });
  proxy.server.listen({ host: args.listenHost, port: 0, backlog: 4_096 });
  await once(proxy.server, 'listening');
  const address = proxy.server.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no port');
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: address.port })}\n`);
  process.on('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify({ event: 'stopping', active: proxy.sessions.size })}\n`);
    process.exit(0);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`relay harness: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
