import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { formatEndpoint, parseSocketAddress, prefixContains } from '../config/address.js';
import type { TcpAoBinding } from '../native/index.js';
import type { TerminatorPlan } from '../policy/plan.js';
import { ConnectionRefused, type ConnectionHandler, type OpenedLegs } from './server.js';

function connectPlain(plan: TerminatorPlan): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const upstream = connect({
      host: plan.forwardPlain.host,
      port: plan.forwardPlain.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    upstream.pause();
    const timer = setTimeout(() => {
      upstream.destroy();
      reject(new Error(`no answer within ${plan.relay.connectTimeoutMs} ms`));
    }, plan.relay.connectTimeoutMs);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.removeAllListeners('error');
      resolve(upstream);
    });
    upstream.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * Terminator: the listener carries every policy key and ao_required, so the
 * kernel drops unsigned or wrongly signed SYNs. Each accepted socket is checked
 * again (keys present, ao_required, peer inside a policy) before the local app
 * is dialled: a connection that fails any check never reaches the app.
 */
export function createTerminatorHandler(plan: TerminatorPlan, binding: TcpAoBinding, log: Logger): ConnectionHandler {
  return {
    readAoInfo: (fd) => binding.getAoInfo(fd),
    async open(client: Socket): Promise<OpenedLegs> {
      const wireFd = binding.socketFd(client);
      const peer = parseSocketAddress(client.remoteAddress);
      let currentKey: number;
      try {
        const info = binding.getAoInfo(wireFd);
        const installed = binding.getKeys(wireFd);
        if (!info.aoRequired || installed.length === 0) throw new Error('no AO keys on the accepted socket');
        currentKey = info.currentKey;
      } catch (error) {
        throw new ConnectionRefused(
          'not_authenticated',
          `the kernel did not authenticate this connection with TCP-AO (${error instanceof Error ? error.message : String(error)})`,
        );
      }
      const policy =
        peer === undefined
          ? undefined
          : plan.policies.find((candidate) =>
              prefixContains(
                { address: candidate.peer, prefixLength: candidate.prefixLength, family: candidate.peer.includes(':') ? 6 : 4 },
                peer.address,
                peer.family,
              ),
            );
      if (policy === undefined) {
        throw new ConnectionRefused('unknown_peer', 'the peer address is outside every ao_policy.peer_ip');
      }
      let upstream: Socket;
      try {
        upstream = await connectPlain(plan);
      } catch (error) {
        throw new ConnectionRefused(
          'app_unreachable',
          `the local app at ${formatEndpoint(plan.forwardPlain)} is not reachable: ${error instanceof Error ? error.message : String(error)}`,
          { policy: policy.name },
        );
      }
      log.debug({ event: 'app_connected', forward: formatEndpoint(plan.forwardPlain) }, 'local app connected');
      return { upstream, wire: client, wireFd, context: { policy: policy.name, currentKey } };
    },
  };
}
