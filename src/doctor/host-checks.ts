/**
 * Checks of the host alone: kernel, the TCP-AO runtime probe, the MAC
 * algorithms, the process's privileges and the netns-wide counters.
 */
import { gunzipSync } from 'node:zlib';
import { hasCode } from '../errors.js';
import { KERNEL_ALGORITHMS, type MacAlgorithm, type ProbeResult } from '../native/index.js';
import { errnoName, oneLine } from './errno.js';
import {
  FIRST_TCP_AO_KERNEL,
  hasCapability,
  kernelAtLeast,
  kernelConfigValue,
  namedCapabilities,
  parseCapEff,
  parseKernelVersion,
  parsePortNumber,
  tcpAoCounters,
} from './parse.js';
import type { CheckResult, DoctorBinding, DoctorDeps } from './types.js';

export const NO_TCP_AO_FINDING = 'kernel built without CONFIG_TCP_AO';

const NEEDS_TCP_AO_KERNEL =
  'boot a Linux 6.7 or later kernel built with CONFIG_TCP_AO=y; ' +
  'in a container the host kernel is the one that counts, so fix the host';

/** The binding, or why it could not be loaded. */
export type BindingOutcome =
  | { readonly loaded: true; readonly binding: DoctorBinding }
  | { readonly loaded: false; readonly error: unknown };

export function loadBindingOnce(deps: DoctorDeps): BindingOutcome {
  try {
    return { loaded: true, binding: deps.loadBinding() };
  } catch (error) {
    return { loaded: false, error };
  }
}

async function readTextIfPresent(deps: DoctorDeps, path: string): Promise<Buffer | undefined> {
  try {
    return await deps.readFile(path);
  } catch {
    return undefined;
  }
}

export async function checkKernel(deps: DoctorDeps): Promise<CheckResult> {
  const id = 'kernel';
  const title = 'Kernel version and config';
  const release = deps.kernelRelease();
  const version = parseKernelVersion(release);
  const tooOld = version !== undefined && !kernelAtLeast(version, FIRST_TCP_AO_KERNEL);

  let configSource: string | undefined;
  let configText: string | undefined;
  const procConfig = await readTextIfPresent(deps, '/proc/config.gz');
  if (procConfig !== undefined) {
    try {
      configText = gunzipSync(procConfig).toString('utf8');
      configSource = '/proc/config.gz';
    } catch {
      configText = undefined;
    }
  }
  if (configText === undefined) {
    const bootPath = `/boot/config-${release}`;
    const bootConfig = await readTextIfPresent(deps, bootPath);
    if (bootConfig !== undefined) {
      configText = bootConfig.toString('utf8');
      configSource = bootPath;
    }
  }
  const tcpAo = configText === undefined ? undefined : kernelConfigValue(configText, 'CONFIG_TCP_AO');
  const detail = { release, configSource: configSource ?? null, CONFIG_TCP_AO: tcpAo ?? null };

  if (tooOld) {
    return {
      id,
      title,
      status: 'warn',
      finding: `kernel ${release} predates TCP-AO (merged in 6.7)`,
      remedy: NEEDS_TCP_AO_KERNEL,
      detail,
    };
  }
  if (tcpAo === undefined) {
    return {
      id,
      title,
      status: 'skip',
      finding: `kernel ${release}; no build config readable (/proc/config.gz, /boot/config-${release}), the runtime probe decides`,
      detail,
    };
  }
  if (tcpAo === 'y') {
    return { id, title, status: 'pass', finding: `kernel ${release}, CONFIG_TCP_AO=y in ${configSource}`, detail };
  }
  const stated = tcpAo === 'not set' || tcpAo === 'absent' ? `CONFIG_TCP_AO ${tcpAo}` : `CONFIG_TCP_AO=${tcpAo}`;
  return {
    id,
    title,
    status: 'warn',
    finding: `kernel ${release}, ${stated} in ${configSource}`,
    remedy: `informative only, the runtime probe decides; if it fails too: ${NEEDS_TCP_AO_KERNEL}`,
    detail,
  };
}

export function checkProbe(outcome: BindingOutcome): { result: CheckResult; supported: boolean } {
  const id = 'ao.probe';
  const title = 'TCP-AO runtime probe';
  const failed = (finding: string, remedy: string, detail?: CheckResult['detail']) => ({
    supported: false,
    result: { id, title, status: 'fail' as const, finding, remedy, detail },
  });
  if (!outcome.loaded) {
    return failed(
      `native addon not loadable: ${oneLine(outcome.error)}`,
      'build it with `npm run build:native` (needs python3, make and g++), then run doctor again',
    );
  }
  let probe: ProbeResult;
  try {
    probe = outcome.binding.probeTcpAo();
  } catch (error) {
    if (hasCode(error, 'ERR_TCPAO_ADDON_MISSING')) return checkProbe({ loaded: false, error });
    const code = errnoName(error);
    return failed(
      `the probe itself failed${code === undefined ? '' : ` with ${code}`}: ${oneLine(error)}`,
      'this is unexpected; report it with the output of `tcpao-proxy doctor --json`',
      code === undefined ? undefined : { code },
    );
  }
  if (probe.supported) {
    return {
      supported: true,
      result: { id, title, status: 'pass', finding: 'the kernel answers TCP-AO socket options' },
    };
  }
  const detail = { errno: probe.errno, code: probe.code, reason: probe.reason };
  if (probe.code === 'ENOPROTOOPT') return failed(NO_TCP_AO_FINDING, NEEDS_TCP_AO_KERNEL, detail);
  return failed(
    `TCP-AO socket options refused with ${probe.code} (${probe.reason})`,
    `${probe.code} is not the "kernel lacks TCP-AO" answer (ENOPROTOOPT): ` +
      'look for a seccomp profile or LSM policy blocking setsockopt/getsockopt at IPPROTO_TCP, and the kernel log',
    detail,
  );
}

/** The kernel crypto each algorithm needs (crypto/Kconfig). */
export const ALGORITHM_KERNEL_OPTIONS: Readonly<Record<MacAlgorithm, string>> = {
  'hmac-sha1': 'CONFIG_CRYPTO_HMAC and CONFIG_CRYPTO_SHA1',
  'hmac-sha256': 'CONFIG_CRYPTO_HMAC and CONFIG_CRYPTO_SHA256',
  'aes-128-cmac': 'CONFIG_CRYPTO_CMAC and CONFIG_CRYPTO_AES',
};

export const MAC_ALGORITHMS: readonly MacAlgorithm[] = ['hmac-sha1', 'hmac-sha256', 'aes-128-cmac'];

/**
 * Adds a throwaway key of one algorithm to a scratch socket. A refusal is a
 * fail when the config uses the algorithm (or no config says which are used),
 * otherwise a warn.
 */
export function checkAlgorithm(
  deps: DoctorDeps,
  outcome: BindingOutcome,
  supported: boolean,
  algorithm: MacAlgorithm,
  usedByConfig: boolean | undefined,
): CheckResult {
  const id = `mac.${algorithm}`;
  const title = `MAC algorithm ${algorithm}`;
  const facts = { kernelName: KERNEL_ALGORITHMS[algorithm], kernelOptions: ALGORITHM_KERNEL_OPTIONS[algorithm] };
  if (!outcome.loaded || !supported) {
    return { id, title, status: 'skip', finding: 'the TCP-AO probe failed, so no key can be added' };
  }
  const binding = outcome.binding;
  let fd: number | undefined;
  try {
    fd = binding.openScratchSocket(4);
    binding.addKey(fd, {
      peer: '127.0.0.1',
      sendId: 1,
      recvId: 1,
      algorithm,
      key: deps.randomBytes(16),
    });
  } catch (error) {
    const code = errnoName(error);
    const refusedBy = code === undefined ? oneLine(error) : code;
    const used = usedByConfig !== false;
    return {
      id,
      title,
      status: used ? 'fail' : 'warn',
      finding:
        `the kernel refused a ${facts.kernelName} key: ${refusedBy}` + (usedByConfig === false ? ' (not used by this config)' : ''),
      remedy:
        code === 'ENOENT'
          ? `the kernel has no ${facts.kernelName} transform: build it with ${facts.kernelOptions} (or load those modules), or use an algorithm that passes`
          : `adding a ${facts.kernelName} key failed with ${refusedBy}; use an algorithm that passes and report this`,
      detail: { kernelName: facts.kernelName, code: code ?? null, usedByConfig: usedByConfig ?? null },
    };
  } finally {
    if (fd !== undefined) binding.closeFd(fd);
  }
  return {
    id,
    title,
    status: 'pass',
    finding: `a ${facts.kernelName} key was accepted on a scratch socket`,
    detail: { kernelName: facts.kernelName, usedByConfig: usedByConfig ?? null },
  };
}

/**
 * What the process may do. Verified on 6.12: TCP-AO socket options need no
 * capability (uid 65534 with none worked); only ports below
 * ip_unprivileged_port_start need CAP_NET_BIND_SERVICE.
 */
export async function checkPrivileges(deps: DoctorDeps, listenPorts: readonly number[]): Promise<CheckResult> {
  const id = 'privileges';
  const title = 'Privileges and capabilities';
  const uid = deps.uid();
  const statusText = await readTextIfPresent(deps, '/proc/self/status');
  const capEff = statusText === undefined ? undefined : parseCapEff(statusText.toString('utf8'));
  const portStartText = await readTextIfPresent(deps, '/proc/sys/net/ipv4/ip_unprivileged_port_start');
  const unprivilegedPortStart = (portStartText === undefined ? undefined : parsePortNumber(portStartText.toString('utf8'))) ?? 1024;
  const privilegedPorts = [...new Set(listenPorts.filter((port) => port < unprivilegedPortStart))].sort((a, b) => a - b);

  const capabilities = capEff === undefined ? [] : namedCapabilities(capEff);
  const detail = {
    uid,
    capEff: capEff === undefined ? null : capEff.toString(16).padStart(16, '0'),
    capabilities,
    unprivilegedPortStart,
    privilegedListenPorts: privilegedPorts,
  };
  const held = capEff === undefined ? 'CapEff unreadable' : capabilities.length === 0 ? 'no network capabilities' : capabilities.join(', ');
  const base = `uid ${uid}, ${held}; TCP-AO socket options need no capability`;

  if (privilegedPorts.length === 0) {
    const ports =
      listenPorts.length === 0
        ? ''
        : listenPorts.length === 1
          ? `; listen port ${listenPorts[0]} needs none`
          : `; listen ports ${listenPorts.join(', ')} need none`;
    return { id, title, status: 'pass', finding: `${base}${ports}`, detail };
  }
  const canBindLow = capEff === undefined ? uid === 0 : hasCapability(capEff, 'CAP_NET_BIND_SERVICE');
  if (canBindLow) {
    return {
      id,
      title,
      status: 'pass',
      finding: `${base}; CAP_NET_BIND_SERVICE covers listen port ${privilegedPorts.join(', ')}`,
      detail,
    };
  }
  return {
    id,
    title,
    status: 'fail',
    finding: `${base}; listen port ${privilegedPorts.join(', ')} is below ${unprivilegedPortStart} and needs CAP_NET_BIND_SERVICE`,
    remedy:
      'grant CAP_NET_BIND_SERVICE (docker: --cap-add NET_BIND_SERVICE; systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE), ' +
      `or listen on a port at or above ${unprivilegedPortStart}`,
    detail,
  };
}

export async function checkCounters(deps: DoctorDeps): Promise<CheckResult> {
  const id = 'counters';
  const title = 'TCP-AO counters (this netns)';
  const text = await readTextIfPresent(deps, '/proc/net/netstat');
  if (text === undefined) {
    return { id, title, status: 'skip', finding: '/proc/net/netstat is not readable' };
  }
  const counters = tcpAoCounters(text.toString('utf8'));
  if (counters === undefined) {
    return { id, title, status: 'skip', finding: 'this kernel exposes no TCPAO* counters in /proc/net/netstat' };
  }
  const entries = Object.entries(counters);
  return {
    id,
    title,
    status: 'pass',
    finding: entries.map(([name, value]) => `${name} ${value}`).join(', '),
    detail: Object.fromEntries(entries.map(([name, value]) => [name, Number(value)])),
  };
}
