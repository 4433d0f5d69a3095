/**
 * Fakes for the doctor's dependencies: a DoctorDeps whose /proc, /boot, interfaces, identity and clock are fixtures.
 * Files outside /proc and /boot (configs and key files in a test directory)
 * are read from the real filesystem, as the config loader reads them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import type { Test } from 'tap';

import { realDeps } from '../../src/doctor/doctor.js';
import type { DoctorBinding, DoctorDeps } from '../../src/doctor/types.js';
import type { MacAlgorithm } from '../../src/native/index.js';
import { initiatorSection, policyToml, terminatorSection } from '../helpers/configs.js';
import { fakeDoctorBinding } from '../helpers/fake-bindings.js';

/** /proc/self/status with the given effective capability mask (hex). */
export function procStatus(capEff: string): string {
  return [
    'Name:\tnode',
    'Umask:\t0022',
    'State:\tR (running)',
    'Uid:\t0\t0\t0\t0',
    'CapInh:\t0000000000000000',
    `CapPrm:\t${capEff}`,
    `CapEff:\t${capEff}`,
    'CapBnd:\t000001ffffffffff',
    'CapAmb:\t0000000000000000',
    'NoNewPrivs:\t0',
    '',
  ].join('\n');
}

/** All capabilities, as root has them. */
export const ROOT_CAPS = '000001ffffffffff';
/** None at all, as an unprivileged user has. */
export const NO_CAPS = '0000000000000000';

/** /proc/net/netstat in the kernel's layout, with the TCP-AO counters among other TcpExt fields. */
export function netstatText(counters: Readonly<Record<string, number>> = {}): string {
  const tcpExtNames = ['SyncookiesSent', 'SyncookiesRecv', 'TW', 'TCPAOGood', 'TCPAOBad', 'TCPAOKeyNotFound', 'TCPAORequired', 'TCPAODroppedIcmps', 'TCPMigrateReqSuccess'];
  const tcpExtValues = tcpExtNames.map((name) => String(counters[name] ?? 0));
  return [
    `TcpExt: ${tcpExtNames.join(' ')}`,
    `TcpExt: ${tcpExtValues.join(' ')}`,
    'IpExt: InNoRoutes InTruncatedPkts InMcastPkts',
    'IpExt: 0 0 7',
    'MPTcpExt: MPCapableSYNRX MPCapableSYNTX',
    'MPTcpExt: 0 0',
    '',
  ].join('\n');
}

export const LOOPBACK_ONLY: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [
    { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
    { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
  ],
};

export function withInterface(name: string, address: string, cidr: string): NodeJS.Dict<NetworkInterfaceInfo[]> {
  return {
    ...LOOPBACK_ONLY,
    [name]: [{ address, netmask: '255.255.0.0', family: 'IPv4', mac: '02:42:ac:11:00:02', internal: false, cidr }],
  };
}

function missing(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT', errno: -2 });
}

export interface FakeHost {
  readonly binding?: DoctorBinding;
  readonly loadBindingError?: Error;
  /** Contents of files under /proc and /boot; any other such path is missing. */
  readonly files?: Readonly<Record<string, string | Buffer>>;
  readonly release?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly uid?: number;
  readonly interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
  readonly tryBind?: DoctorDeps['tryBind'];
  readonly tryConnect?: DoctorDeps['tryConnect'];
}

/** A kernel config with CONFIG_TCP_AO as given ("y" or "not set"), gzipped as /proc/config.gz is. */
export function configGz(tcpAo: 'y' | 'not set'): Buffer {
  const line = tcpAo === 'y' ? 'CONFIG_TCP_AO=y' : '# CONFIG_TCP_AO is not set';
  return gzipSync(Buffer.from(['CONFIG_NET=y', 'CONFIG_INET=y', line, 'CONFIG_TCP_MD5SIG=y', ''].join('\n')));
}

/** A healthy TCP-AO host: 6.12 kernel with CONFIG_TCP_AO=y, root, counters present. */
export const HEALTHY_FILES: Readonly<Record<string, string | Buffer>> = {
  '/proc/config.gz': configGz('y'),
  '/proc/self/status': procStatus(ROOT_CAPS),
  '/proc/sys/net/ipv4/ip_unprivileged_port_start': '1024\n',
  '/proc/net/netstat': netstatText({ TCPAOGood: 12 }),
};

export function fakeDeps(host: FakeHost = {}): DoctorDeps {
  const real = realDeps(host.env ?? {});
  const files = host.files ?? HEALTHY_FILES;
  const binding = host.binding ?? fakeDoctorBinding();
  return {
    ...real,
    loadBinding: () => {
      if (host.loadBindingError !== undefined) throw host.loadBindingError;
      return binding;
    },
    readFile: async (path) => {
      if (path.startsWith('/proc/') || path.startsWith('/boot/')) {
        const content = files[path];
        if (content === undefined) throw missing(path);
        return Buffer.isBuffer(content) ? content : Buffer.from(content);
      }
      return readFile(path);
    },
    hostname: () => 'testhost',
    kernelRelease: () => host.release ?? '6.12.48-test',
    arch: 'x64',
    nodeVersion: 'v20.0.0-test',
    uid: () => host.uid ?? 0,
    networkInterfaces: () => host.interfaces ?? LOOPBACK_ONLY,
    now: () => new Date('2026-01-02T03:04:05.000Z'),
    randomBytes: (size) => Buffer.alloc(size, 0x5a),
    tryBind: host.tryBind ?? real.tryBind,
    tryConnect: host.tryConnect ?? real.tryConnect,
  };
}

/** A directory for configs and key files, removed at teardown. */
export function scratchDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-doctor-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeConfig(dir: string, text: string, name = 'sidecar.toml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

export interface PolicyText {
  readonly name?: string;
  readonly peer?: string;
  readonly keyid?: number;
  readonly alg?: MacAlgorithm;
  readonly keySource?: string;
}

function policyText(policy: PolicyText): string {
  return policyToml({ name: policy.name, peer: policy.peer, keyid: policy.keyid, macAlg: policy.alg, keySource: policy.keySource });
}

export function terminatorToml(listenAo: string, forwardPlain: string, policies: readonly PolicyText[] = [{}]): string {
  return [terminatorSection(listenAo, forwardPlain), ...policies.map(policyText)].join('\n');
}

export function initiatorToml(listenPlain: string, remoteAo: string, policies: readonly PolicyText[] = [{}], sourceIp?: string): string {
  return [initiatorSection(listenPlain, remoteAo, sourceIp), ...policies.map(policyText)].join('\n');
}

/** Fails the test if any rendering of the key (raw text, hex, base64) appears in `output`. */
export function assertKeyAbsent(t: Test, output: string, key: Buffer | string, what: string): void {
  const bytes = Buffer.isBuffer(key) ? key : Buffer.from(key);
  const forms = [bytes.toString('utf8'), bytes.toString('hex'), bytes.toString('hex').toUpperCase(), bytes.toString('base64')];
  const leaked = forms.filter((form) => output.includes(form));
  t.same(leaked, [], `${what} carries no form of the key`);
}

/** Bind and connect always succeed: for tests of checks other than the listen and app ones. */
export const quietNetwork = {
  tryBind: async (): Promise<void> => undefined,
  tryConnect: async (): Promise<void> => undefined,
};
