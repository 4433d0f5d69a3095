/**
 * The doctor: runs every check in a fixed order and returns the report. It
 * touches the system only through DoctorDeps, so the same code runs against
 * the real host (realDeps) and against fakes in unit tests.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { arch, hostname, networkInterfaces, release } from 'node:os';

import type { Mode } from '../config/schema.js';
import { defaultBinding } from '../native/index.js';
import { algorithmsUsed, checkKeySources, inspectConfig } from './config-checks.js';
import { checkAppEndpoint, checkListen, listenEndpoint } from './endpoint-checks.js';
import { checkAlgorithm, checkCounters, checkKernel, checkPrivileges, checkProbe, loadBindingOnce, MAC_ALGORITHMS } from './host-checks.js';
import { checkPeers } from './peer-checks.js';
import { buildReport } from './report.js';
import type { CheckResult, DoctorDeps, DoctorReport } from './types.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;

export interface DoctorRun {
  /** Path of the sidecar config to check; host checks only when absent. */
  readonly configPath?: string;
  /** Also require the config to be for this side. */
  readonly mode?: Mode;
  /** How long the forward_plain connect test waits. */
  readonly connectTimeoutMs?: number;
}

export async function runDoctor(deps: DoctorDeps, run: DoctorRun = {}): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  checks.push(await checkKernel(deps));

  const binding = loadBindingOnce(deps);
  const probe = checkProbe(binding);
  checks.push(probe.result);

  const inspection = run.configPath === undefined ? undefined : await inspectConfig(deps, run.configPath, run.mode);
  const used = inspection === undefined ? undefined : algorithmsUsed(inspection);
  for (const algorithm of MAC_ALGORITHMS) {
    checks.push(checkAlgorithm(deps, binding, probe.supported, algorithm, used === undefined ? undefined : used.has(algorithm)));
  }

  const parsed = inspection?.parsed;
  checks.push(await checkPrivileges(deps, parsed === undefined ? [] : [listenEndpoint(parsed).endpoint.port]));

  if (inspection !== undefined) {
    checks.push(inspection.validity);
    checks.push(...checkKeySources(inspection));
    if (parsed === undefined) {
      checks.push({
        id: 'config.addresses',
        title: 'Config addresses',
        status: 'skip',
        finding: 'the config does not validate, so its listen, app and peer addresses are not checked',
      });
    } else {
      checks.push(await checkListen(deps, parsed));
      checks.push(await checkAppEndpoint(deps, parsed, run.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS));
      checks.push(...checkPeers(deps, parsed));
    }
  }

  checks.push(await checkCounters(deps));

  const host = {
    hostname: deps.hostname(),
    kernel: deps.kernelRelease(),
    arch: deps.arch,
    node: deps.nodeVersion,
    uid: deps.uid(),
    generatedAt: deps.now().toISOString(),
    config: run.configPath ?? null,
  };
  return buildReport(host, checks);
}

function tryBind(host: string, port: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolvePromise());
    });
  });
}

function tryConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const socket = createConnection({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect ETIMEDOUT ${host}:${port}`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolvePromise();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

/** The real host: the addon, /proc, the network stack, the clock. */
export function realDeps(env: NodeJS.ProcessEnv = process.env): DoctorDeps {
  return {
    loadBinding: defaultBinding,
    readFile: (path) => readFile(path),
    env,
    hostname,
    kernelRelease: release,
    arch: arch(),
    nodeVersion: process.version,
    uid: () => process.getuid?.() ?? -1,
    networkInterfaces,
    now: () => new Date(),
    randomBytes: (size) => randomBytes(size),
    tryBind,
    tryConnect,
  };
}
