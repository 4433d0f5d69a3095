/**
 * Whether a policy can face a router. Junos, IOS-XR, IOS-XE, SR OS and EOS
 * speak RFC 5926's HMAC-SHA-1-96 and AES-128-CMAC-96, both with 12-byte MACs
 * (docs/routers.md). hmac-sha256 and other MAC lengths work between two
 * tcpao-proxy sidecars or Linux peers, so they are warned about, never refused.
 */
import type { ConfigWarning } from './load.js';
import type { MacAlgorithm } from './schema.js';

/** The algorithms of RFC 5926, which every router TCP-AO implementation offers. */
export const RFC5926_ALGORITHMS: readonly MacAlgorithm[] = ['hmac-sha1', 'aes-128-cmac'];
/** The "-96" of HMAC-SHA-1-96 and AES-128-CMAC-96, in bytes. */
export const RFC5926_MACLEN = 12;

/** What the check needs of a policy: parsed ([[ao_policy]] as the schema returns it) or resolved. */
export interface InteropPolicy {
  readonly maclen: number;
  readonly keys: readonly { readonly mac_alg: MacAlgorithm; readonly position: number | undefined; readonly maclen?: number }[];
}

/** One warning per key whose algorithm, and per policy or key whose MAC length, a router cannot use. */
export function routerInteropWarnings(policies: readonly { readonly index: number; readonly policy: InteropPolicy }[]): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  for (const { index, policy } of policies) {
    for (const key of policy.keys) {
      if (RFC5926_ALGORITHMS.includes(key.mac_alg)) continue;
      const table = key.position === undefined ? `ao_policy[${index}]` : `ao_policy[${index}].key[${key.position}]`;
      warnings.push({
        path: `${table}.mac_alg`,
        message:
          `${key.mac_alg} is not an RFC 5926 algorithm: fine between two tcpao-proxy sidecars, but a router peer ` +
          '(Junos, IOS-XR, IOS-XE, SR OS, EOS) needs hmac-sha1 or aes-128-cmac; see docs/routers.md',
      });
    }
    if (policy.maclen !== RFC5926_MACLEN && policy.keys.some((key) => key.maclen === undefined)) {
      warnings.push(maclenWarning(`ao_policy[${index}].maclen`, policy.maclen));
    }
    for (const key of policy.keys) {
      if (key.maclen !== undefined && key.maclen !== RFC5926_MACLEN) {
        warnings.push(maclenWarning(`ao_policy[${index}].key[${key.position ?? 0}].maclen`, key.maclen));
      }
    }
  }
  return warnings;
}

function maclenWarning(path: string, maclen: number): ConfigWarning {
  return {
    path,
    message:
      `${maclen}-byte MACs do not interoperate with routers, whose HMAC-SHA-1-96 and AES-128-CMAC-96 ` +
      `send ${RFC5926_MACLEN}; use maclen = ${RFC5926_MACLEN} (the default) for a router peer; see docs/routers.md`,
  };
}
