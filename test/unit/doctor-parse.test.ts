// The doctor's parsers of kernel text: release strings, kernel config lines,
// CapEff from /proc/self/status and the TcpExt counters of /proc/net/netstat.
import t from 'tap';

import {
  hasCapability,
  kernelAtLeast,
  kernelConfigValue,
  namedCapabilities,
  parseCapEff,
  parseKernelVersion,
  parseNetstat,
  parsePortNumber,
  tcpAoCounters,
  FIRST_TCP_AO_KERNEL,
} from '../../src/doctor/parse.js';
import { netstatText, procStatus } from './doctor-fakes.js';

t.test('kernel release strings', async (t) => {
  t.same(parseKernelVersion('6.12.48+deb13-amd64'), { major: 6, minor: 12, patch: 48 });
  t.same(parseKernelVersion('6.7-rc1'), { major: 6, minor: 7, patch: 0 });
  t.equal(parseKernelVersion('not-a-kernel'), undefined);
  t.ok(kernelAtLeast({ major: 6, minor: 7, patch: 0 }, FIRST_TCP_AO_KERNEL), '6.7 has TCP-AO');
  t.notOk(kernelAtLeast({ major: 6, minor: 6, patch: 99 }, FIRST_TCP_AO_KERNEL), '6.6 predates it');
  t.ok(kernelAtLeast({ major: 7, minor: 0, patch: 0 }, FIRST_TCP_AO_KERNEL), 'a later major is newer');
});

t.test('kernel config option values', async (t) => {
  const config = ['CONFIG_TCP_MD5SIG=y', '# CONFIG_TCP_AO is not set', 'CONFIG_LOCALVERSION="-lab"', '# CONFIG_TCP_AO_EXTRA is not set'].join('\n');
  t.equal(kernelConfigValue(config, 'CONFIG_TCP_AO'), 'not set');
  t.equal(kernelConfigValue(config, 'CONFIG_TCP_MD5SIG'), 'y');
  t.equal(kernelConfigValue(config, 'CONFIG_LOCALVERSION'), '"-lab"');
  t.equal(kernelConfigValue(config, 'CONFIG_NET_VRF'), 'absent');
  t.equal(kernelConfigValue('CONFIG_TCP_AO_EXTRA=y\n', 'CONFIG_TCP_AO'), 'absent', 'a longer option name is not a match');
});

t.test('CapEff from /proc/self/status', async (t) => {
  const root = parseCapEff(procStatus('000001ffffffffff'));
  t.equal(root, 0x1ffffffffffn);
  t.same(namedCapabilities(root as bigint), ['CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN']);

  // Docker's default set: chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap,
  // net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap.
  const docker = parseCapEff(procStatus('00000000a80425fb')) as bigint;
  t.ok(hasCapability(docker, 'CAP_NET_BIND_SERVICE'));
  t.ok(hasCapability(docker, 'CAP_NET_RAW'));
  t.notOk(hasCapability(docker, 'CAP_NET_ADMIN'), 'docker drops NET_ADMIN by default');
  t.same(namedCapabilities(docker), ['CAP_NET_BIND_SERVICE', 'CAP_NET_RAW']);

  const none = parseCapEff(procStatus('0000000000000000')) as bigint;
  t.same(namedCapabilities(none), []);
  t.equal(parseCapEff('Name:\tnode\nCapPrm:\t0000000000000400\n'), undefined, 'no CapEff line, no mask');
});

t.test('/proc/net/netstat sections and TCP-AO counters', async (t) => {
  const text = netstatText({ TCPAOGood: 4_294_967_296, TCPAOBad: 3, TCPAOKeyNotFound: 2, TCPAORequired: 1, TCPAODroppedIcmps: 7 });
  const sections = parseNetstat(text);
  t.same([...sections.keys()], ['TcpExt', 'IpExt', 'MPTcpExt']);
  t.equal(sections.get('IpExt')?.get('InMcastPkts'), 7n);
  t.same(tcpAoCounters(text), {
    TCPAOGood: 4_294_967_296n,
    TCPAOBad: 3n,
    TCPAOKeyNotFound: 2n,
    TCPAORequired: 1n,
    TCPAODroppedIcmps: 7n,
  });

  const oldKernel = 'TcpExt: SyncookiesSent TW\nTcpExt: 0 5\nIpExt: InNoRoutes\nIpExt: 0\n';
  t.equal(tcpAoCounters(oldKernel), undefined, 'a kernel without the fields has no counters');
  t.equal(tcpAoCounters(''), undefined, 'empty text has no counters');
  t.equal(tcpAoCounters('IpExt: InNoRoutes\nIpExt: 0\n'), undefined, 'no TcpExt section, no counters');
});

t.test('ip_unprivileged_port_start', async (t) => {
  t.equal(parsePortNumber('1024\n'), 1024);
  t.equal(parsePortNumber('0\n'), 0);
  t.equal(parsePortNumber('garbage'), undefined);
});
