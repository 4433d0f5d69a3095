/**
 * The doctor's router interop check: whether each policy could face a router
 * speaking RFC 5926 (docs/routers.md). A warning, never a failure: hmac-sha256
 * and other MAC lengths are right between two tcpao-proxy sidecars.
 */
import { RFC5926_MACLEN, routerInteropWarnings } from '../config/interop.js';
import type { ConfigInspection } from './config-checks.js';
import type { CheckResult } from './types.js';

export function checkRouterInterop(inspection: ConfigInspection): CheckResult {
  const id = 'config.router_interop';
  const title = 'Router interop (RFC 5926)';
  const warnings = routerInteropWarnings(inspection.policies);
  if (warnings.length === 0) {
    return {
      id,
      title,
      status: 'pass',
      finding: `every key uses hmac-sha1 or aes-128-cmac with ${RFC5926_MACLEN}-byte MACs, as routers do`,
    };
  }
  const more = warnings.length > 1 ? ` (and ${warnings.length - 1} more)` : '';
  return {
    id,
    title,
    status: 'warn',
    finding: `${warnings[0]?.path}: ${warnings[0]?.message}${more}`,
    remedy:
      'nothing to do when the peer is another tcpao-proxy sidecar; for a router peer: ' +
      warnings.map((warning) => `${warning.path}: ${warning.message}`).join('; '),
    detail: { warnings: warnings.map((warning) => ({ path: warning.path, message: warning.message })) },
  };
}
