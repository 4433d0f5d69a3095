// The doctor's host checks driven through every branch with a mock binding
// and fixture /proc text: kernel config, the TCP-AO probe, the MAC algorithms,
// privileges and counters, and how they add up to the report's verdict.
import t from 'tap';

import { keyBytes } from '../helpers/key-bytes.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import type { CheckResult, DoctorReport } from '../../src/doctor/types.js';
import { TcpAoError } from '../../src/errors.js';
import {
  configGz,
  fakeDeps,
  HEALTHY_FILES,
  NO_CAPS,
  netstatText,
  procStatus,
  quietNetwork,
  scratchDir,
  terminatorToml,
  writeConfig,
} from './doctor-fakes.js';
import { fakeDoctorBinding, NO_TCP_AO, syscallError } from '../helpers/fake-bindings.js';

function check(report: DoctorReport, id: string): CheckResult {
  const found = report.checks.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no check ${id} in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
}

const MAC_IDS = ['mac.hmac-sha1', 'mac.hmac-sha256', 'mac.aes-128-cmac'];

t.test('a healthy TCP-AO host passes every host check', async (t) => {
  const binding = fakeDoctorBinding();
  const report = await runDoctor(fakeDeps({ binding }));
  t.same(
    report.checks.map((c) => c.id),
    ['kernel', 'ao.probe', ...MAC_IDS, 'privileges', 'counters'],
    'host checks only, in order',
  );
  t.same(report.checks.map((c) => c.status), ['pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'pass']);
  t.same(report.summary, { pass: 7, warn: 0, fail: 0, skip: 0 });
  t.equal(report.ok, true);
  t.equal(report.schema, 'tcpao-proxy.doctor/v1');
  t.same(report.host, {
    hostname: 'testhost',
    kernel: '6.12.48-test',
    arch: 'x64',
    node: 'v20.0.0-test',
    uid: 0,
    generatedAt: '2026-01-02T03:04:05.000Z',
    config: null,
  });
  for (const c of report.checks) t.equal(c.remedy, undefined, `${c.id}: a pass has no remedy`);
});

t.test('a kernel without TCP-AO fails the probe and skips the algorithms', async (t) => {
  const binding = fakeDoctorBinding({ probe: NO_TCP_AO });
  const report = await runDoctor(fakeDeps({ binding, files: { ...HEALTHY_FILES, '/proc/config.gz': configGz('not set') } }));
  const probe = check(report, 'ao.probe');
  t.equal(probe.status, 'fail');
  t.equal(probe.finding, 'kernel built without CONFIG_TCP_AO');
  t.match(probe.remedy, /6\.7 or later kernel built with CONFIG_TCP_AO=y/);
  t.same(probe.detail, { errno: 92, code: 'ENOPROTOOPT', reason: 'kernel built without CONFIG_TCP_AO' });
  for (const id of MAC_IDS) {
    t.equal(check(report, id).status, 'skip', `${id} skipped`);
    t.match(check(report, id).finding, /probe failed/);
  }
  t.same(binding.opened, [], 'no scratch socket is opened once the probe failed');
  const kernel = check(report, 'kernel');
  t.equal(kernel.status, 'warn');
  t.match(kernel.finding, /CONFIG_TCP_AO not set in \/proc\/config\.gz/);
  t.match(kernel.remedy, /informative only/);
  t.equal(report.ok, false);
  t.same(report.summary, { pass: 2, warn: 1, fail: 1, skip: 3 });
});

t.test('a probe errno other than ENOPROTOOPT is named, not read as a missing feature', async (t) => {
  const binding = fakeDoctorBinding({ probe: { supported: false, errno: 1, code: 'EPERM', reason: 'getsockopt(TCP_AO_INFO) on a fresh socket failed with EPERM (errno 1)' } });
  const report = await runDoctor(fakeDeps({ binding }));
  const probe = check(report, 'ao.probe');
  t.equal(probe.status, 'fail');
  t.match(probe.finding, /refused with EPERM/);
  t.notMatch(probe.finding, /CONFIG_TCP_AO/);
  t.match(probe.remedy, /seccomp/);
});

t.test('a missing addon is reported as such', async (t) => {
  const missing = new TcpAoError('ERR_TCPAO_ADDON_MISSING', 'build/Release/tcpao.node cannot be loaded: run npm install');
  const viaProbe = await runDoctor(fakeDeps({ binding: fakeDoctorBinding({ probe: missing }) }));
  t.match(check(viaProbe, 'ao.probe').finding, /^native addon not loadable: .*tcpao\.node/);
  t.match(check(viaProbe, 'ao.probe').remedy, /npm run build:native/);

  const viaLoad = await runDoctor(fakeDeps({ loadBindingError: new Error('Cannot find module tcpao.node') }));
  t.equal(check(viaLoad, 'ao.probe').status, 'fail');
  t.match(check(viaLoad, 'ao.probe').finding, /native addon not loadable/);
  for (const id of MAC_IDS) t.equal(check(viaLoad, id).status, 'skip');
});

t.test('a probe that throws for another reason fails with that reason', async (t) => {
  const report = await runDoctor(fakeDeps({ binding: fakeDoctorBinding({ probe: syscallError('EMFILE', 24, 'socket') }) }));
  t.match(check(report, 'ao.probe').finding, /probe itself failed with EMFILE/);
});

t.test('each algorithm gets its own scratch socket and throwaway key, always closed', async (t) => {
  const binding = fakeDoctorBinding({ refuse: { 'aes-128-cmac': syscallError('ENOENT', 2) } });
  const report = await runDoctor(fakeDeps({ binding }));
  t.equal(binding.opened.length, 3, 'one socket per algorithm');
  t.same(binding.closed, binding.opened, 'every socket closed, the refused one too');
  t.same(
    binding.added.map((a) => a.key.algorithm),
    ['hmac-sha1', 'hmac-sha256'],
    'the refused key is not recorded as added',
  );
  for (const { key } of binding.added) {
    t.equal(key.peer, '127.0.0.1');
    t.equal(keyBytes(key.key).length, 16);
  }
  t.equal(check(report, 'mac.hmac-sha1').status, 'pass');
  t.equal(check(report, 'mac.hmac-sha256').status, 'pass');
  const cmac = check(report, 'mac.aes-128-cmac');
  t.equal(cmac.status, 'fail', 'without a config any refused algorithm fails');
  t.equal(cmac.finding, 'the kernel refused a cmac(aes128) key: ENOENT');
  t.match(cmac.remedy, /CONFIG_CRYPTO_CMAC and CONFIG_CRYPTO_AES/);
  t.equal(report.ok, false);
});

t.test('a refused algorithm the config does not use is a warning; one it uses is a failure', async (t) => {
  const dir = scratchDir(t);
  const env = { TCPAO_KEY: 'a-terminator-key-of-some-length' };
  const refuse = { 'aes-128-cmac': syscallError('ENOENT', 2) };

  const sha256Config = writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019', [{ alg: 'hmac-sha256' }]), 'sha.toml');
  const unused = await runDoctor(fakeDeps({ binding: fakeDoctorBinding({ refuse }), env, ...quietNetwork }), { configPath: sha256Config });
  const cmacUnused = check(unused, 'mac.aes-128-cmac');
  t.equal(cmacUnused.status, 'warn');
  t.match(cmacUnused.finding, /ENOENT \(not used by this config\)/);

  const cmacConfig = writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019', [{ alg: 'aes-128-cmac' }]), 'cmac.toml');
  const used = await runDoctor(fakeDeps({ binding: fakeDoctorBinding({ refuse }), env, ...quietNetwork }), { configPath: cmacConfig });
  const cmacUsed = check(used, 'mac.aes-128-cmac');
  t.equal(cmacUsed.status, 'fail');
  t.equal(cmacUsed.finding, 'the kernel refused a cmac(aes128) key: ENOENT');
  t.same(cmacUsed.detail, { kernelName: 'cmac(aes128)', code: 'ENOENT', usedByConfig: true });
  t.equal(used.ok, false);
});

t.test('kernel config sources and versions', async (t) => {
  const boot = await runDoctor(
    fakeDeps({
      release: '6.12.48-amd64',
      files: { '/proc/self/status': procStatus(NO_CAPS), '/boot/config-6.12.48-amd64': 'CONFIG_TCP_AO=y\n' },
    }),
  );
  t.equal(check(boot, 'kernel').status, 'pass');
  t.equal(check(boot, 'kernel').finding, 'kernel 6.12.48-amd64, CONFIG_TCP_AO=y in /boot/config-6.12.48-amd64');

  const corrupt = await runDoctor(
    fakeDeps({ release: '6.12.1', files: { ...HEALTHY_FILES, '/proc/config.gz': 'not gzip', '/boot/config-6.12.1': '# CONFIG_TCP_AO is not set\n' } }),
  );
  t.equal(check(corrupt, 'kernel').status, 'warn', 'an unreadable config.gz falls back to /boot');
  t.match(check(corrupt, 'kernel').finding, /not set in \/boot\/config-6\.12\.1/);

  const none = await runDoctor(fakeDeps({ files: { '/proc/self/status': procStatus(NO_CAPS) } }));
  const skipped = check(none, 'kernel');
  t.equal(skipped.status, 'skip');
  t.match(skipped.finding, /no build config readable.*the runtime probe decides/);

  const old = await runDoctor(fakeDeps({ release: '6.1.0-40-amd64', binding: fakeDoctorBinding({ probe: NO_TCP_AO }) }));
  t.equal(check(old, 'kernel').status, 'warn');
  t.equal(check(old, 'kernel').finding, 'kernel 6.1.0-40-amd64 predates TCP-AO (merged in 6.7)');
});

t.test('privileges: TCP-AO needs no capability, low ports need CAP_NET_BIND_SERVICE', async (t) => {
  const dir = scratchDir(t);
  const env = { TCPAO_KEY: 'a-terminator-key-of-some-length' };
  const lowPort = writeConfig(dir, terminatorToml('127.0.0.1:179', '127.0.0.1:11019'), 'low.toml');
  const highPort = writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019'), 'high.toml');
  const unprivileged = { ...HEALTHY_FILES, '/proc/self/status': procStatus(NO_CAPS) };

  const hostOnly = await runDoctor(fakeDeps({ uid: 65534, files: unprivileged }));
  const plain = check(hostOnly, 'privileges');
  t.equal(plain.status, 'pass', 'no capability is needed for TCP-AO itself');
  t.equal(plain.finding, 'uid 65534, no network capabilities; TCP-AO socket options need no capability');

  const denied = await runDoctor(fakeDeps({ uid: 65534, files: unprivileged, env, ...quietNetwork }), { configPath: lowPort });
  const low = check(denied, 'privileges');
  t.equal(low.status, 'fail');
  t.match(low.finding, /listen port 179 is below 1024 and needs CAP_NET_BIND_SERVICE/);
  t.match(low.remedy, /--cap-add NET_BIND_SERVICE/);
  t.same(low.detail, { uid: 65534, capEff: NO_CAPS, capabilities: [], unprivilegedPortStart: 1024, privilegedListenPorts: [179] });

  const allowed = await runDoctor(fakeDeps({ env, ...quietNetwork }), { configPath: lowPort });
  t.equal(check(allowed, 'privileges').status, 'pass');
  t.match(check(allowed, 'privileges').finding, /CAP_NET_BIND_SERVICE covers listen port 179/);

  const sysctlZero = await runDoctor(
    fakeDeps({ uid: 65534, files: { ...unprivileged, '/proc/sys/net/ipv4/ip_unprivileged_port_start': '0\n' }, env, ...quietNetwork }),
    { configPath: lowPort },
  );
  t.equal(check(sysctlZero, 'privileges').status, 'pass', 'ip_unprivileged_port_start=0 (as in containers) frees every port');

  const high = await runDoctor(fakeDeps({ uid: 65534, files: unprivileged, env, ...quietNetwork }), { configPath: highPort });
  t.equal(check(high, 'privileges').status, 'pass');
  t.match(check(high, 'privileges').finding, /listen port 1790 needs none/);
});

t.test('counters are context: pass with values, skip when absent, never fail', async (t) => {
  const busy = await runDoctor(
    fakeDeps({ files: { ...HEALTHY_FILES, '/proc/net/netstat': netstatText({ TCPAOGood: 10, TCPAOBad: 4, TCPAOKeyNotFound: 1 }) } }),
  );
  const counters = check(busy, 'counters');
  t.equal(counters.status, 'pass');
  t.equal(counters.finding, 'TCPAOGood 10, TCPAOBad 4, TCPAOKeyNotFound 1, TCPAORequired 0, TCPAODroppedIcmps 0');
  t.same(counters.detail, { TCPAOGood: 10, TCPAOBad: 4, TCPAOKeyNotFound: 1, TCPAORequired: 0, TCPAODroppedIcmps: 0 });

  const oldKernel = await runDoctor(
    fakeDeps({ files: { ...HEALTHY_FILES, '/proc/net/netstat': 'TcpExt: SyncookiesSent\nTcpExt: 0\n' } }),
  );
  t.equal(check(oldKernel, 'counters').status, 'skip');
  t.match(check(oldKernel, 'counters').finding, /exposes no TCPAO\* counters/);

  const unreadable = await runDoctor(fakeDeps({ files: { '/proc/config.gz': configGz('y') } }));
  t.equal(check(unreadable, 'counters').status, 'skip');
  t.equal(unreadable.ok, true, 'missing /proc files never fail the report');
});
