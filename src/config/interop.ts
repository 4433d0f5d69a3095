/**
 * Interop warnings: settings Linux peers accept but routers do not speak.
 * Routers implement the RFC 5926 algorithms (HMAC-SHA-1-96, AES-128-CMAC-96)
 * with a 96-bit MAC; hmac-sha256 and other MAC lengths work only between
 * Linux stacks such as two sidecars. Never an error: docs/routers.md says what
 * to set on each side.
 */
import type { IndexedPolicy } from './document.js';
import type { ConfigWarning } from './problems.js';
import { DEFAULT_MACLEN, type AoKeyEntry } from './schema.js';

/** What routers use: RFC 5925's default MAC length, 12 bytes (96 bits). */
export const ROUTER_MACLEN = DEFAULT_MACLEN;

/** The algorithm every router lacks. */
const NOT_ROUTER_ALGORITHM = 'hmac-sha256';

/** One warning per key with hmac-sha256, and one per place a MAC length other than 12 is set. */
export function interopWarnings(policies: readonly IndexedPolicy[]): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  for (const { index, policy } of policies) {
    const base = `ao_policy[${index}]`;
    const keyPath = (key: AoKeyEntry, field: string) => (key.position === undefined ? `${base}.${field}` : `${base}.key[${key.position}].${field}`);
    for (const key of policy.keys) {
      if (key.mac_alg !== NOT_ROUTER_ALGORITHM) continue;
      warnings.push({
        code: 'WARN_TCPAO_ROUTER_MAC_ALG',
        path: keyPath(key, 'mac_alg'),
        message:
          'hmac-sha256 is not an RFC 5926 algorithm and routers do not offer it (they speak hmac-sha1 and aes-128-cmac ' +
          'with a 96-bit MAC): fine between two Linux peers, but use hmac-sha1 or aes-128-cmac towards a router (docs/routers.md)',
      });
    }
    // The policy's own maclen, when a key uses it; a key that sets a different one is reported at its table.
    if (policy.maclen !== ROUTER_MACLEN && policy.keys.some((key) => key.maclen === policy.maclen)) {
      warnings.push(maclenWarning(`${base}.maclen`, policy.maclen));
    }
    for (const key of policy.keys) {
      if (key.maclen !== policy.maclen && key.maclen !== ROUTER_MACLEN) warnings.push(maclenWarning(keyPath(key, 'maclen'), key.maclen));
    }
  }
  return warnings;
}

function maclenWarning(path: string, maclen: number): ConfigWarning {
  return {
    code: 'WARN_TCPAO_ROUTER_MACLEN',
    path,
    message:
      `maclen ${maclen} differs from the ${ROUTER_MACLEN} bytes (96 bits) routers use with hmac-sha1-96 and aes-128-cmac-96, ` +
      `and both ends must agree: set maclen = ${ROUTER_MACLEN} towards a router (docs/routers.md)`,
  };
}
