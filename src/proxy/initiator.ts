import { Socket } from 'node:net';
import type { Logger } from 'pino';
import { hasCode, TcpAoError } from '../errors.js';
import type { TcpAoBinding } from '../native/index.js';
import { formatEndpoint } from '../config/address.js';
import { describePolicies, type InitiatorPlan } from '../policy/plan.js';
import { ConnectionRefused, type ConnectionHandler, type OpenedLegs } from './server.js';

const COUNTER_HINT = 'compare the AO counters on both sides (tcpao-proxy doctor, nstat -az TcpExtTCPAO*)';

/** Explains a failed AO connect in terms an operator can act on. */
function refusalFor(error: unknown, plan: InitiatorPlan): ConnectionRefused {
  const remote = formatEndpoint(plan.remoteAo);
  if (hasCode(error, 'ERR_TCPAO_CONNECT_TIMEOUT')) {
    return new ConnectionRefused(
      'wire_connect_timeout',
      `no answer from ${remote} within ${plan.relay.connectTimeoutMs} ms; a wrong key, key id or algorithm ` +
        `on either side drops the SYN silently, so ${COUNTER_HINT}`,
    );
  }
  const sysCode = error instanceof TcpAoError ? error.sysCode : undefined;
  if (sysCode === 'ECONNREFUSED') {
    return new ConnectionRefused('wire_connect_refused', `${remote} refused the connection: is the terminator up?`);
  }
  if (sysCode === 'EKEYREJECTED') {
    return new ConnectionRefused('no_key_for_peer', `no AO key in the config covers ${remote}; check ao_policy.peer_ip`);
  }
  if (hasCode(error, 'ERR_TCPAO_UNSUPPORTED')) {
    return new ConnectionRefused('tcpao_unsupported', error instanceof Error ? error.message : String(error));
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new ConnectionRefused('wire_connect_failed', `AO connect to ${remote} failed: ${detail}`);
}

/**
 * Initiator: each plain local client gets its own AO connection to the remote
 * terminator, with every policy key installed and ao_required set before
 * connect(); the addon never returns a socket without them.
 */
export function createInitiatorHandler(plan: InitiatorPlan, binding: TcpAoBinding, log: Logger): ConnectionHandler {
  const keys = plan.policies.flatMap((policy) => policy.keys);
  const policyNames = plan.policies.map((policy) => policy.name);
  return {
    readAoInfo: (fd) => binding.getAoInfo(fd),
    async open(): Promise<OpenedLegs> {
      let fd: number;
      try {
        fd = await binding.connectAo({
          host: plan.remoteAo.host,
          port: plan.remoteAo.port,
          keys,
          ...(plan.sourceIp === undefined ? {} : { localAddress: plan.sourceIp }),
          timeoutMs: plan.relay.connectTimeoutMs,
        });
      } catch (error) {
        throw refusalFor(error, plan);
      }
      try {
        const info = binding.getAoInfo(fd);
        const installed = binding.getKeys(fd);
        if (!info.aoRequired || installed.length === 0) {
          throw new ConnectionRefused('not_authenticated', 'the wire socket lost its AO keys after connect');
        }
        log.info(
          {
            event: 'outbound_ao_applied',
            remote: formatEndpoint(plan.remoteAo),
            policies: describePolicies(plan.policies),
            currentKey: info.currentKey,
            rnextKey: info.rnextKey,
            keysOnSocket: installed.length,
          },
          'outbound AO policy applied before connect',
        );
        const wire = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
        return { upstream: wire, wire, wireFd: fd, context: { policies: policyNames, currentKey: info.currentKey } };
      } catch (error) {
        binding.closeFd(fd);
        throw error instanceof ConnectionRefused ? error : refusalFor(error, plan);
      }
    },
  };
}
