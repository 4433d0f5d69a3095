/**
 * Checks of the config's own addresses on this host: the listen address can
 * be bound, and the local app endpoint answers (or, on the initiator, stays on
 * loopback).
 */
import { formatEndpoint, isLoopback, type Endpoint } from '../config/address.js';
import type { ParsedConfig } from '../config/schema.js';
import { errnoName, oneLine } from './errno.js';
import type { CheckResult, DoctorDeps } from './types.js';

/** The address the sidecar listens on, named as the config names it. */
export function listenEndpoint(config: ParsedConfig): { readonly field: string; readonly endpoint: Endpoint } {
  return config.mode === 'initiator'
    ? { field: 'listen_plain', endpoint: config.initiator.listen_plain }
    : { field: 'listen_ao', endpoint: config.terminator.listen_ao };
}

export async function checkListen(deps: DoctorDeps, config: ParsedConfig): Promise<CheckResult> {
  const { field, endpoint } = listenEndpoint(config);
  const id = `listen.${field}`;
  const title = `Listen address ${field}`;
  const where = formatEndpoint(endpoint);
  const detail = { field, address: where };
  try {
    await deps.tryBind(endpoint.host, endpoint.port);
    return { id, title, status: 'pass', finding: `${where} can be bound`, detail };
  } catch (error) {
    const code = errnoName(error);
    const failed = (finding: string, remedy: string): CheckResult => ({
      id,
      title,
      status: 'fail',
      finding: `${where}: ${finding}`,
      remedy,
      detail: { ...detail, code: code ?? null },
    });
    switch (code) {
      case 'EADDRINUSE':
        return failed(
          'port already in use',
          `stop what holds it (ss -ltnp 'sport = :${endpoint.port}' shows it; a sidecar already running on this config counts) or choose another port`,
        );
      case 'EADDRNOTAVAIL':
        return failed(
          'address not on this host',
          `use an address this host has (ip -br addr), or 0.0.0.0 / [::] for all; in a container, the container's own address`,
        );
      case 'EACCES':
        return failed(
          'permission denied',
          `port ${endpoint.port} needs CAP_NET_BIND_SERVICE (docker: --cap-add NET_BIND_SERVICE), or use a port at or above ip_unprivileged_port_start`,
        );
      default:
        return failed(`cannot be bound: ${code ?? oneLine(error)}`, 'check the address and port in the config');
    }
  }
}

/**
 * The local app's side: the terminator's forward_plain should answer (a
 * refused connect is only "not yet up"); the initiator's listen_plain should
 * be loopback so plain traffic never leaves the host.
 */
export async function checkAppEndpoint(deps: DoctorDeps, config: ParsedConfig, timeoutMs: number): Promise<CheckResult> {
  if (config.mode === 'initiator') {
    const endpoint = config.initiator.listen_plain;
    const id = 'app.listen_plain';
    const title = 'Local app side (listen_plain)';
    const where = formatEndpoint(endpoint);
    if (isLoopback(endpoint.host, endpoint.family)) {
      return { id, title, status: 'pass', finding: `${where} is loopback: the plain leg stays on this host` };
    }
    return {
      id,
      title,
      status: 'warn',
      finding: `${where} is not loopback: plain, unauthenticated traffic can arrive from off the host`,
      remedy: `listen on 127.0.0.1:${endpoint.port} or [::1]:${endpoint.port} and point the local app there`,
    };
  }
  const endpoint = config.terminator.forward_plain;
  const id = 'app.forward_plain';
  const title = 'Local app (forward_plain)';
  const where = formatEndpoint(endpoint);
  const offHost = isLoopback(endpoint.host, endpoint.family) ? '' : '; it is not loopback, so the plain leg crosses the network';
  try {
    await deps.tryConnect(endpoint.host, endpoint.port, timeoutMs);
  } catch (error) {
    const code = errnoName(error);
    const finding =
      code === 'ECONNREFUSED'
        ? `not yet up: nothing accepts connections on ${where}`
        : code === 'ETIMEDOUT'
          ? `not yet up: no answer from ${where} within ${timeoutMs} ms`
          : `not reachable: connecting to ${where} failed with ${code ?? oneLine(error)}`;
    return {
      id,
      title,
      status: 'warn',
      finding: `${finding}${offHost}`,
      remedy: 'start the app; the sidecar may start first, but every relayed session fails until the app accepts connections',
      detail: { address: where, code: code ?? null },
    };
  }
  if (offHost !== '') {
    return {
      id,
      title,
      status: 'warn',
      finding: `${where} accepts connections${offHost}`,
      remedy: 'run the app on this host and forward to a loopback address',
      detail: { address: where },
    };
  }
  return { id, title, status: 'pass', finding: `${where} accepts connections`, detail: { address: where } };
}
