/**
 * Rules that relate fields to each other: one section for the side this
 * process runs, unique policy names, no key id clash for overlapping peers, key
 * counts a socket takes, and how the policies fit the listener or remote_ao.
 */
import { type ErrorCode } from '../errors.js';
import { formatEndpoint, formatPrefix, isLoopback, type Endpoint } from './address.js';
import { rawPolicies, validPolicies } from './document.js';
import { describeMismatch, idClash, selectInitiatorPolicies } from '../policy/select.js';
import type { ConfigProblem, ConfigWarning } from './problems.js';
import {
  InitiatorSchema,
  MAX_KEYS_PER_SOCKET,
  SECTION_COUNT_MESSAGE,
  TerminatorSchema,
  type AoKeyEntry,
  type AoPolicy,
  type Mode,
} from './schema.js';

export interface Relations {
  readonly problems: ConfigProblem[];
  readonly warnings: ConfigWarning[];
}

/**
 * Rules between fields, checked over whichever parts of the document are
 * individually valid, so that they are reported alongside unrelated errors.
 */
export function checkRelations(raw: Record<string, unknown>, requestedMode: Mode | undefined): Relations {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigWarning[] = [];
  const invalid = (path: string, message: string, code: ErrorCode = 'ERR_TCPAO_CONFIG_INVALID'): void => {
    problems.push({ code, path, message });
  };

  const hasInitiator = raw['initiator'] !== undefined;
  const hasTerminator = raw['terminator'] !== undefined;
  let mode: Mode | undefined;
  if (hasInitiator && hasTerminator) {
    invalid('(top level)', `both [initiator] and [terminator] are present; ${SECTION_COUNT_MESSAGE}, for the side this process runs`);
  } else if (!hasInitiator && !hasTerminator) {
    const wanted = requestedMode === undefined ? 'an [initiator] or a [terminator] section' : `the [${requestedMode}] section`;
    invalid('(top level)', `no [initiator] or [terminator] section; add ${wanted}`);
  } else {
    mode = hasInitiator ? 'initiator' : 'terminator';
    if (requestedMode !== undefined && requestedMode !== mode) {
      invalid(
        mode,
        `--mode ${requestedMode} was given but this config has a [${mode}] section; run with --mode ${mode} or use the ${requestedMode}'s config`,
        'ERR_TCPAO_MODE_MISMATCH',
      );
    }
  }

  const written = rawPolicies(raw);
  const policies = validPolicies(raw);
  const allPoliciesValid = written.length > 0 && policies.length === written.length;

  const names = new Map<string, number>();
  for (const { index, policy } of policies) {
    const earlier = names.get(policy.name);
    if (earlier !== undefined) {
      invalid(`ao_policy[${index}].name`, `"${policy.name}" is already the name of ao_policy[${earlier}]; names must be unique`);
    } else names.set(policy.name, index);
  }

  for (let later = 0; later < policies.length; later++) {
    for (let earlier = 0; earlier < later; earlier++) {
      const a = policies[earlier];
      const b = policies[later];
      if (a === undefined || b === undefined) continue;
      // Every key of one policy against every key of the other: all of them sit on the same sockets.
      for (const bKey of b.policy.keys) {
        for (const aKey of a.policy.keys) {
          const clash = idClash(
            { ...a.policy, send_id: aKey.send_id, recv_id: aKey.recv_id },
            { ...b.policy, send_id: bKey.send_id, recv_id: bKey.recv_id },
          );
          if (clash === undefined) continue;
          const ids = [
            clash.sendId ? `send_id ${bKey.send_id}` : undefined,
            clash.recvId ? `recv_id ${bKey.recv_id}` : undefined,
          ].filter((id) => id !== undefined);
          const where = (index: number, key: AoKeyEntry) =>
            key.position === undefined ? `ao_policy[${index}]` : `ao_policy[${index}].key[${key.position}]`;
          invalid(
            where(b.index, bKey),
            `${ids.join(' and ')} already used by ${where(a.index, aKey)} ("${a.policy.name}") for an overlapping peer ` +
              `(${formatPrefix(b.policy.peer_ip)} and ${formatPrefix(a.policy.peer_ip)}); the kernel refuses this (EEXIST): ` +
              'give keys for the same peer distinct send_id and recv_id',
          );
        }
      }
    }
  }

  if (mode === 'terminator') {
    const listenerKeys = countInstalledKeys(policies.map((entry) => entry.policy));
    if (listenerKeys > MAX_KEYS_PER_SOCKET) {
      invalid(
        'ao_policy',
        `the AO listener would hold ${listenerKeys} keys (every key of every [[ao_policy]] but deprecated ones), ` +
          `more than the ${MAX_KEYS_PER_SOCKET} keys a socket takes: split the peers over several terminators or drop unused keys`,
      );
    }
    const section = TerminatorSchema.safeParse(raw['terminator']);
    if (section.success) {
      const listener = section.data.listen_ao;
      for (const { index, policy } of policies) checkTerminatorPolicy(listener, index, policy, invalid);
      if (!isLoopback(section.data.forward_plain.host, section.data.forward_plain.family)) {
        warnings.push({
          code: 'WARN_TCPAO_PLAIN_LEG_NOT_LOOPBACK',
          path: 'terminator.forward_plain',
          message: `${formatEndpoint(section.data.forward_plain)} is not a loopback address: the plain leg to the app crosses the network unauthenticated`,
        });
      }
    }
  }

  if (mode === 'initiator') {
    const section = InitiatorSchema.safeParse(raw['initiator']);
    if (section.success) {
      const { remote_ao: remote, listen_plain: listen, source_ip: source } = section.data;
      if (source !== undefined && source.family !== remote.family) {
        invalid('initiator.source_ip', `is IPv${source.family} but remote_ao is IPv${remote.family}; use an address of the same family`);
      }
      if (!isLoopback(listen.host, listen.family)) {
        warnings.push({
          code: 'WARN_TCPAO_PLAIN_LEG_NOT_LOOPBACK',
          path: 'initiator.listen_plain',
          message: `${formatEndpoint(listen)} is not a loopback address: anyone who reaches it can send through the AO session; prefer 127.0.0.1 or [::1]`,
        });
      }
      if (allPoliciesValid) {
        const selection = selectInitiatorPolicies(
          policies.map((entry) => ({ ...entry.policy, index: entry.index })),
          remote,
        );
        const connectionKeys = countInstalledKeys(selection.selected);
        if (connectionKeys > MAX_KEYS_PER_SOCKET) {
          invalid(
            'ao_policy',
            `each connection to ${formatEndpoint(remote)} would hold ${connectionKeys} keys (every key but deprecated ones of the ` +
              `${selection.selected.length} policies that apply to it), more than the ${MAX_KEYS_PER_SOCKET} keys a socket takes: drop unused keys`,
          );
        }
        if (selection.selected.length === 0) {
          const reasons = selection.unused.map((policy) => `ao_policy[${policy.index}]: ${describeMismatch(policy, remote)}`).join('; ');
          invalid(
            'initiator.remote_ao',
            `no [[ao_policy]] applies to ${formatEndpoint(remote)} (${reasons}); the initiator never dials without TCP-AO: ` +
              'add a policy whose peer_ip contains this address and whose peer_port is 0 or this port',
          );
        }
        for (const policy of selection.unused) {
          if (selection.selected.length === 0) break;
          warnings.push({
            code: 'WARN_TCPAO_POLICY_UNUSED',
            path: `ao_policy[${policy.index}]`,
            message: `not used on this initiator: ${describeMismatch(policy, remote)}`,
          });
        }
      }
    }
  }
  return { problems, warnings };
}

/** Keys one socket gets from these policies, as the sidecar installs them on new sockets (deprecated keys never are). */
function countInstalledKeys(policies: readonly AoPolicy[]): number {
  return policies.reduce((sum, policy) => sum + policy.keys.filter((key) => key.role !== 'deprecated').length, 0);
}

function checkTerminatorPolicy(
  listener: Endpoint,
  index: number,
  policy: AoPolicy,
  invalid: (path: string, message: string) => void,
): void {
  const peer = policy.peer_ip;
  // The AO listener is IPV6_V6ONLY (native/tcp_ao.cc create_listener), so each family needs its own listener.
  if (peer.family !== listener.family) {
    invalid(
      `ao_policy[${index}].peer_ip`,
      `IPv${peer.family} peer ${formatPrefix(peer)} cannot reach the IPv${listener.family} listener ${formatEndpoint(listener)}; ` +
        `an AO listener serves one address family: give listen_ao an IPv${peer.family} address or run a second terminator`,
    );
  }
  if (policy.peer_port !== 0 && policy.peer_port !== listener.port) {
    invalid(
      `ao_policy[${index}].peer_port`,
      `${policy.peer_port} differs from listen_ao's port ${listener.port}; on a terminator peer_port names the AO wire port, ` +
        `so set it to ${listener.port} or 0 (the kernel matches keys by address only)`,
    );
  }
}
