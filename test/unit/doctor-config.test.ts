// The doctor's --config checks: validity, key sources, listen address, local
// app endpoint and peer addresses. The binding is a mock (TCP-AO is not under
// test here); binds and connects are real where the case is about them. No
// rendering of any report may contain the key, in any encoding.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { runDoctor } from '../../src/doctor/doctor.js';
import { renderHuman, renderJson } from '../../src/doctor/report.js';
import type { CheckResult, DoctorReport } from '../../src/doctor/types.js';
import {
  assertKeyAbsent,
  fakeDeps,
  initiatorToml,
  quietNetwork,
  scratchDir,
  terminatorToml,
  withInterface,
  writeConfig,
  type FakeHost,
} from './doctor-fakes.js';
import { fakeDoctorBinding, syscallError } from '../helpers/fake-bindings.js';

const KEY = 'doctor-unit-secret-Zq81';
const ENV = { TCPAO_KEY: KEY };

function check(report: DoctorReport, id: string): CheckResult {
  const found = report.checks.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no check ${id} in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
}

/** Runs the doctor on a config and asserts the key is in no rendering of the report. */
async function doctorOn(t: Test, configPath: string, host: FakeHost = {}, key: string = KEY): Promise<DoctorReport> {
  const report = await runDoctor(fakeDeps({ env: ENV, ...host }), { configPath, connectTimeoutMs: 2_000 });
  assertKeyAbsent(t, renderHuman(report, { colour: false }) + renderJson(report), key, 'the report');
  return report;
}

async function listenOn(t: Test, host: string): Promise<number> {
  const server = net.createServer((socket) => socket.destroy());
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on (bound and released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

t.test('a valid terminator config with its app up passes every config check (its hmac-sha256 key warns)', async (t) => {
  const dir = scratchDir(t);
  const appPort = await listenOn(t, '127.0.0.1');
  const wirePort = await closedPort();
  const path = writeConfig(dir, terminatorToml(`127.0.0.1:${wirePort}`, `127.0.0.1:${appPort}`));
  const report = await doctorOn(t, path);
  t.same(
    report.checks.map((c) => [c.id, c.status]),
    [
      ['kernel', 'pass'],
      ['ao.probe', 'pass'],
      ['mac.hmac-sha1', 'pass'],
      ['mac.hmac-sha256', 'pass'],
      ['mac.aes-128-cmac', 'pass'],
      ['privileges', 'pass'],
      // The fakes' policies use hmac-sha256: fine between sidecars, a WARN_TCPAO_ROUTER_MAC_ALG towards routers.
      ['config.valid', 'warn'],
      ['key.bmp-wire', 'pass'],
      ['listen.listen_ao', 'pass'],
      ['app.forward_plain', 'pass'],
      ['peer.bmp-wire', 'pass'],
      ['counters', 'pass'],
    ],
  );
  t.equal(report.ok, true);
  t.equal(report.host.config, path);
  t.match(
    check(report, 'config.valid').finding,
    /^valid terminator config, 1 of 1 ao_policy installed on this side; WARN_TCPAO_ROUTER_MAC_ALG: ao_policy\[0\]\.mac_alg: hmac-sha256 is not an RFC 5926 algorithm/,
  );
  t.same(
    (check(report, 'config.valid').detail?.['warnings'] as { code: string }[]).map((warning) => warning.code),
    ['WARN_TCPAO_ROUTER_MAC_ALG'],
    'the detail carries each warning with its code',
  );
  t.equal(check(report, 'key.bmp-wire').finding, `${KEY.length} bytes from env:TCPAO_KEY`);
  t.equal(check(report, 'listen.listen_ao').finding, `127.0.0.1:${wirePort} can be bound`);
  t.equal(check(report, 'app.forward_plain').finding, `127.0.0.1:${appPort} accepts connections`);
  t.equal(check(report, 'peer.bmp-wire').finding, 'loopback peer 127.0.0.1/32: the AO leg stays on this host');
});

t.test('a valid initiator config passes, and its listen_plain must be loopback', async (t) => {
  const dir = scratchDir(t);
  const plainPort = await closedPort();
  const loopback = await doctorOn(t, writeConfig(dir, initiatorToml(`127.0.0.1:${plainPort}`, '127.0.0.1:1790'), 'lo.toml'));
  t.equal(loopback.ok, true);
  t.same(
    loopback.checks.filter((c) => c.status !== 'pass').map((c) => c.id),
    ['config.valid'],
    'nothing but passes, bar the hmac-sha256 interop warning on the config',
  );
  t.equal(check(loopback, 'app.listen_plain').finding, `127.0.0.1:${plainPort} is loopback: the plain leg stays on this host`);
  t.equal(check(loopback, 'peer.remote_ao').finding, 'remote_ao 127.0.0.1:1790 is loopback: the AO leg stays on this host');

  const open = await doctorOn(t, writeConfig(dir, initiatorToml('0.0.0.0:5000', '127.0.0.1:1790'), 'open.toml'), quietNetwork);
  const app = check(open, 'app.listen_plain');
  t.equal(app.status, 'warn');
  t.match(app.finding, /0\.0\.0\.0:5000 is not loopback: plain, unauthenticated traffic can arrive from off the host/);
  t.match(app.remedy, /127\.0\.0\.1:5000/);
  t.equal(open.ok, true, 'a warning does not fail the report');
});

t.test('a missing key variable fails its key check and nothing else about the config', async (t) => {
  const dir = scratchDir(t);
  const path = writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019', [{ keySource: 'env:TCPAO_KEY_MISSING' }]));
  const report = await doctorOn(t, path, quietNetwork);
  const key = check(report, 'key.bmp-wire');
  t.equal(key.status, 'fail');
  t.match(key.finding, /^environment variable TCPAO_KEY_MISSING is not set/);
  t.match(key.remedy, /set TCPAO_KEY_MISSING in the sidecar's environment/);
  t.equal(check(report, 'config.valid').status, 'pass', 'the document itself is valid');
  t.match(check(report, 'config.valid').finding, /key sources are checked below/);
  t.equal(check(report, 'listen.listen_ao').status, 'pass', 'address checks still run');
  t.equal(report.ok, false);
});

t.test('an unreadable key file fails its key check with its own finding', async (t) => {
  const dir = scratchDir(t);
  const keyDir = join(dir, 'keys.d');
  mkdirSync(keyDir);
  const path = writeConfig(
    dir,
    terminatorToml('127.0.0.1:1790', '127.0.0.1:11019', [
      { name: 'absent', peer: '127.0.0.1', keyid: 1, keySource: `file:${join(dir, 'no-such.key')}` },
      { name: 'folder', peer: '127.0.0.2', keyid: 2, keySource: `file:${keyDir}` },
      { name: 'good', peer: '127.0.0.3', keyid: 3, keySource: 'env:TCPAO_KEY' },
    ]),
  );
  const report = await doctorOn(t, path, quietNetwork);
  const absent = check(report, 'key.absent');
  t.equal(absent.status, 'fail');
  t.match(absent.finding, /no-such\.key cannot be opened: no such file \(ENOENT\)/);
  t.match(absent.remedy, /regular file this user can read/);
  const folder = check(report, 'key.folder');
  t.equal(folder.status, 'fail');
  t.match(folder.finding, /keys\.d is a directory, not a file/);
  t.equal(check(report, 'key.good').status, 'pass', 'other policies are checked on their own');
});

t.test('a key of the wrong length fails without showing the key', async (t) => {
  const dir = scratchDir(t);
  const longKey = 'k'.repeat(81);
  const path = writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019'));
  const report = await runDoctor(fakeDeps({ env: { TCPAO_KEY: longKey }, ...quietNetwork }), { configPath: path });
  const key = check(report, 'key.bmp-wire');
  t.equal(key.status, 'fail');
  t.match(key.finding, /holds 81 bytes; a TCP-AO key is 1 to 80 bytes/);
  assertKeyAbsent(t, renderHuman(report, { colour: false }) + renderJson(report), longKey, 'the report');
});

t.test('a key given in hex or base64 is not printed in any encoding', async (t) => {
  const dir = scratchDir(t);
  const secret = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');
  const path = writeConfig(
    dir,
    terminatorToml('127.0.0.1:1790', '127.0.0.1:11019', [
      { name: 'hex', peer: '127.0.0.1', keyid: 1, keySource: 'env-hex:KEY_HEX' },
      { name: 'b64', peer: '127.0.0.2', keyid: 2, keySource: 'env-base64:KEY_B64' },
    ]),
  );
  const report = await runDoctor(fakeDeps({ env: { KEY_HEX: secret.toString('hex'), KEY_B64: secret.toString('base64') }, ...quietNetwork }), {
    configPath: path,
  });
  t.equal(check(report, 'key.hex').finding, '16 bytes from env-hex:KEY_HEX');
  t.equal(check(report, 'key.b64').finding, '16 bytes from env-base64:KEY_B64');
  assertKeyAbsent(t, renderHuman(report, { colour: false }) + renderJson(report), secret, 'the report');
});

t.test('a listen port already in use fails the listen check', async (t) => {
  const dir = scratchDir(t);
  const busyPort = await listenOn(t, '127.0.0.1');
  const path = writeConfig(dir, terminatorToml(`127.0.0.1:${busyPort}`, '127.0.0.1:11019'));
  const report = await doctorOn(t, path, { tryConnect: quietNetwork.tryConnect });
  const listen = check(report, 'listen.listen_ao');
  t.equal(listen.status, 'fail');
  t.equal(listen.finding, `127.0.0.1:${busyPort}: port already in use`);
  t.match(listen.remedy, new RegExp(`sport = :${busyPort}`));
  t.equal(report.ok, false);
});

t.test('a listen address that is not on this host fails the listen check', async (t) => {
  const dir = scratchDir(t);
  // 203.0.113.0/24 is TEST-NET-3: never assigned to a real host.
  const path = writeConfig(dir, terminatorToml('203.0.113.77:1790', '127.0.0.1:11019', [{ peer: '203.0.113.10' }]));
  const report = await doctorOn(t, path, { tryConnect: quietNetwork.tryConnect });
  const listen = check(report, 'listen.listen_ao');
  t.equal(listen.status, 'fail');
  t.equal(listen.finding, '203.0.113.77:1790: address not on this host');
});

t.test('a permission error on bind says which capability is missing', async (t) => {
  const dir = scratchDir(t);
  const path = writeConfig(dir, terminatorToml('127.0.0.1:179', '127.0.0.1:11019'));
  const denied = Object.assign(new Error('listen EACCES: permission denied 127.0.0.1:179'), { code: 'EACCES' });
  const report = await doctorOn(t, path, { tryBind: async () => Promise.reject(denied), tryConnect: quietNetwork.tryConnect });
  t.equal(check(report, 'listen.listen_ao').finding, '127.0.0.1:179: permission denied');
  t.match(check(report, 'listen.listen_ao').remedy, /CAP_NET_BIND_SERVICE/);
});

t.test('an app that is not up yet is a warning, not a failure', async (t) => {
  const dir = scratchDir(t);
  const appPort = await closedPort();
  const path = writeConfig(dir, terminatorToml('127.0.0.1:1790', `127.0.0.1:${appPort}`));
  const report = await doctorOn(t, path, { tryBind: quietNetwork.tryBind });
  const app = check(report, 'app.forward_plain');
  t.equal(app.status, 'warn');
  t.equal(app.finding, `not yet up: nothing accepts connections on 127.0.0.1:${appPort}`);
  t.equal(report.ok, true);

  const silent = Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
  const slow = await doctorOn(t, path, { tryBind: quietNetwork.tryBind, tryConnect: async () => Promise.reject(silent) });
  t.equal(check(slow, 'app.forward_plain').finding, `not yet up: no answer from 127.0.0.1:${appPort} within 2000 ms`);
});

t.test('an app off the host works but is a warning', async (t) => {
  const dir = scratchDir(t);
  const path = writeConfig(dir, terminatorToml('0.0.0.0:1790', '192.0.2.50:11019', [{ peer: '192.0.2.10' }]));
  const report = await doctorOn(t, path, { ...quietNetwork, interfaces: withInterface('eth0', '192.0.2.2', '192.0.2.2/24') });
  const app = check(report, 'app.forward_plain');
  t.equal(app.status, 'warn');
  t.match(app.finding, /accepts connections; it is not loopback, so the plain leg crosses the network/);
});

t.test('peer addresses: loopback mismatches', async (t) => {
  const dir = scratchDir(t);
  const loopListener = await doctorOn(t, writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019', [{ peer: '192.0.2.10' }]), 'a.toml'), quietNetwork);
  const remotePeer = check(loopListener, 'peer.bmp-wire');
  t.equal(remotePeer.status, 'warn');
  t.equal(remotePeer.finding, 'listen_ao 127.0.0.1:1790 is loopback, so peer 192.0.2.10/32 on another host can never reach it');

  const hostListener = await doctorOn(t, writeConfig(dir, terminatorToml('192.0.2.2:1790', '127.0.0.1:11019', [{ peer: '127.0.0.1' }]), 'b.toml'), quietNetwork);
  const loopPeer = check(hostListener, 'peer.bmp-wire');
  t.equal(loopPeer.status, 'warn');
  t.match(loopPeer.finding, /loopback peer 127\.0\.0\.1\/32 never matches: a local client dialling 192\.0\.2\.2:1790 gets 192\.0\.2\.2 as its source address/);

  const anyPeer = await doctorOn(t, writeConfig(dir, terminatorToml('0.0.0.0:1790', '127.0.0.1:11019', [{ peer: '0.0.0.0/0' }]), 'c.toml'), quietNetwork);
  t.equal(check(anyPeer, 'peer.bmp-wire').status, 'skip');
  t.match(check(anyPeer, 'peer.bmp-wire').finding, /accepts any address/);
});

t.test('peer addresses: NAT ranges and subnets', async (t) => {
  const dir = scratchDir(t);
  const dockerPeer = writeConfig(dir, terminatorToml('0.0.0.0:1790', '127.0.0.1:11019', [{ peer: '172.17.0.5' }]), 'docker.toml');

  const throughNat = await doctorOn(t, dockerPeer, quietNetwork);
  const nat = check(throughNat, 'peer.bmp-wire');
  t.equal(nat.status, 'warn');
  t.match(nat.finding, /peer 172\.17\.0\.5\/32 is in 172\.16\.0\.0\/12, where Docker puts its bridge networks .* and not directly attached/);
  t.match(nat.remedy, /MACs cover both ends' addresses and ports/);

  const sameBridge = await doctorOn(t, dockerPeer, { ...quietNetwork, interfaces: withInterface('eth0', '172.17.0.2', '172.17.0.2/16') });
  const bridge = check(sameBridge, 'peer.bmp-wire');
  t.equal(bridge.status, 'pass', 'on the same bridge there is no NAT between the peers');
  t.equal(bridge.finding, 'peer 172.17.0.5/32 is on 172.17.0.2/16 (eth0), directly attached: no NAT on the path');

  const servicePeer = writeConfig(dir, terminatorToml('0.0.0.0:1790', '127.0.0.1:11019', [{ peer: '10.96.0.10' }]), 'svc.toml');
  const service = await doctorOn(t, servicePeer, { ...quietNetwork, interfaces: withInterface('eth0', '10.96.0.2', '10.96.0.2/12') });
  t.equal(check(service, 'peer.bmp-wire').status, 'warn', 'a Kubernetes Service address is always DNAT, attached or not');
  t.match(check(service, 'peer.bmp-wire').finding, /Kubernetes Service range/);

  const routedPeer = writeConfig(dir, terminatorToml('0.0.0.0:1790', '127.0.0.1:11019', [{ peer: '198.51.100.7' }]), 'routed.toml');
  const routed = await doctorOn(t, routedPeer, { ...quietNetwork, interfaces: withInterface('eth0', '192.0.2.2', '192.0.2.2/24') });
  const far = check(routed, 'peer.bmp-wire');
  t.equal(far.status, 'warn');
  t.match(far.finding, /not on a directly attached subnet: .*can't be proven from here/);

  const prefixPeer = writeConfig(dir, terminatorToml('0.0.0.0:1790', '127.0.0.1:11019', [{ peer: '192.0.2.0/24' }]), 'prefix.toml');
  const prefix = await doctorOn(t, prefixPeer, { ...quietNetwork, interfaces: withInterface('eth0', '192.0.2.2', '192.0.2.2/24') });
  t.equal(check(prefix, 'peer.bmp-wire').status, 'pass', 'a peer prefix covering a local subnet is attached');
});

t.test('initiator peer: remote_ao and source_ip', async (t) => {
  const dir = scratchDir(t);
  const eth0 = withInterface('eth0', '192.0.2.2', '192.0.2.2/24');
  const attached = await doctorOn(t, writeConfig(dir, initiatorToml('127.0.0.1:5000', '192.0.2.20:1790', [{ peer: '192.0.2.20' }]), 'a.toml'), {
    ...quietNetwork,
    interfaces: eth0,
  });
  const peer = check(attached, 'peer.remote_ao');
  t.equal(peer.status, 'pass');
  t.equal(peer.finding, 'remote_ao 192.0.2.20/32 is on 192.0.2.2/24 (eth0), directly attached: no NAT on the path');
  t.same(peer.detail, { peer: '192.0.2.20/32', natRange: null, interface: 'eth0', subnet: '192.0.2.2/24' });

  const foreignSource = await doctorOn(
    t,
    writeConfig(dir, initiatorToml('127.0.0.1:5000', '192.0.2.20:1790', [{ peer: '192.0.2.20' }], '198.51.100.1'), 'b.toml'),
    { ...quietNetwork, interfaces: eth0 },
  );
  t.equal(check(foreignSource, 'peer.remote_ao').status, 'warn');
  t.match(check(foreignSource, 'peer.remote_ao').finding, /source_ip 198\.51\.100\.1 is not an address of this host/);

  const loopSource = await doctorOn(
    t,
    writeConfig(dir, initiatorToml('127.0.0.1:5000', '192.0.2.20:1790', [{ peer: '192.0.2.20' }], '127.0.0.1'), 'c.toml'),
    { ...quietNetwork, interfaces: eth0 },
  );
  t.match(check(loopSource, 'peer.remote_ao').finding, /differ in being loopback/);
});

t.test('an invalid config fails config.valid and skips the address checks', async (t) => {
  const dir = scratchDir(t);
  const text = `${terminatorToml('127.0.0.1:1790', '127.0.0.1:11019')}\n[global]\nidle_timout_secs = 5\n`;
  const report = await doctorOn(t, writeConfig(dir, text), quietNetwork);
  const valid = check(report, 'config.valid');
  t.equal(valid.status, 'fail');
  t.match(valid.finding, /^global\.idle_timout_secs: unknown key; did you mean "idle_timeout_secs"\?/);
  t.match(valid.remedy, /^fix the config: /);
  t.equal(check(report, 'key.bmp-wire').status, 'pass', 'a valid policy still has its key checked');
  t.equal(check(report, 'config.addresses').status, 'skip');
  t.notOk(report.checks.some((c) => c.id.startsWith('listen.')), 'no listen check on an invalid config');
  t.equal(report.ok, false);
});

t.test('an unreadable or unparsable config fails config.valid', async (t) => {
  const dir = scratchDir(t);
  const missing = await doctorOn(t, join(dir, 'nope.toml'), quietNetwork);
  t.equal(check(missing, 'config.valid').status, 'fail');
  t.match(check(missing, 'config.valid').finding, /nope\.toml: cannot be read: no such file \(ENOENT\)/);
  t.same(missing.checks.filter((c) => c.id.startsWith('key.')), [], 'no policies, no key checks');

  const broken = await doctorOn(t, writeConfig(dir, '[terminator\nlisten_ao = 1\n', 'broken.toml'), quietNetwork);
  t.match(check(broken, 'config.valid').finding, /not valid TOML/);
});

t.test('--mode must match the config', async (t) => {
  const dir = scratchDir(t);
  const path = writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019'));
  const report = await runDoctor(fakeDeps({ env: ENV, ...quietNetwork }), { configPath: path, mode: 'initiator' });
  const valid = check(report, 'config.valid');
  t.equal(valid.status, 'fail');
  t.match(valid.finding, /--mode initiator was given but this config has a \[terminator\] section/);
});

/** A terminator policy with a preferred env key and an accept key of the given source and algorithm. */
function rolloverToml(acceptSource: string, acceptAlg = 'hmac-sha256'): string {
  return [
    '[terminator]',
    'listen_ao = "127.0.0.1:1790"',
    'forward_plain = "127.0.0.1:11019"',
    '',
    '[[ao_policy]]',
    'name = "bmp-wire"',
    'peer_ip = "127.0.0.1"',
    '[[ao_policy.key]]',
    'send_id = 1',
    'recv_id = 1',
    'mac_alg = "hmac-sha256"',
    'key_source = "env:TCPAO_KEY"',
    'role = "preferred"',
    '[[ao_policy.key]]',
    'send_id = 2',
    'recv_id = 2',
    `mac_alg = "${acceptAlg}"`,
    `key_source = "${acceptSource}"`,
    'role = "accept"',
    '',
  ].join('\n');
}

t.test('a non-preferred [[ao_policy.key]] with a missing file fails its own key check', async (t) => {
  const dir = scratchDir(t);
  const report = await doctorOn(t, writeConfig(dir, rolloverToml(`file:${join(dir, 'next.key')}`)), quietNetwork);
  const preferred = check(report, 'key.bmp-wire.key[0]');
  t.equal(preferred.status, 'pass');
  t.equal(preferred.title, 'Key 0 of ao_policy bmp-wire (send_id 1, recv_id 1, preferred)');
  const accept = check(report, 'key.bmp-wire.key[1]');
  t.equal(accept.status, 'fail', 'the sidecar would exit 2 on it, so the doctor fails too');
  t.match(accept.finding, /next\.key cannot be opened: no such file \(ENOENT\)/);
  t.same(accept.detail, { policy: 'bmp-wire', index: 0, key: 1, source: `file:${join(dir, 'next.key')}`, algorithm: 'hmac-sha256' });
  t.equal(report.ok, false);
});

t.test("a non-preferred key's algorithm counts as used: the kernel refusing it fails the doctor", async (t) => {
  const dir = scratchDir(t);
  const binding = fakeDoctorBinding({ refuse: { 'aes-128-cmac': syscallError('ENOENT', 2) } });
  const report = await runDoctor(fakeDeps({ env: ENV, binding, ...quietNetwork }), {
    configPath: writeConfig(dir, rolloverToml('env:TCPAO_KEY', 'aes-128-cmac')),
  });
  const cmac = check(report, 'mac.aes-128-cmac');
  t.equal(cmac.status, 'fail', 'not a warning: the accept key uses it');
  t.notMatch(cmac.finding, /not used by this config/);
  t.equal(report.ok, false);
});

t.test('a config path or key file that is a FIFO fails its check at once instead of hanging the doctor', async (t) => {
  const dir = scratchDir(t);
  const configFifo = join(dir, 'config.fifo');
  const keyFifo = join(dir, 'key.fifo');
  execFileSync('mkfifo', [configFifo, keyFifo]);
  const onConfig = await doctorOn(t, configFifo, quietNetwork);
  t.equal(check(onConfig, 'config.valid').status, 'fail');
  t.match(check(onConfig, 'config.valid').finding, /config\.fifo: is a FIFO, not a regular file/);
  const onKey = await doctorOn(t, writeConfig(dir, terminatorToml('127.0.0.1:1790', '127.0.0.1:11019', [{ keySource: `file:${keyFifo}` }])), quietNetwork);
  t.equal(check(onKey, 'key.bmp-wire').status, 'fail');
  t.match(check(onKey, 'key.bmp-wire').finding, /key\.fifo is a FIFO, not a regular file/);
  const onDevice = await doctorOn(t, '/dev/zero', quietNetwork);
  t.match(check(onDevice, 'config.valid').finding, /^\/dev\/zero: is a character device, not a regular file/);
});
