/**
 * Router interop warnings: a policy a router speaking RFC 5926 cannot use
 * (hmac-sha256, a MAC length other than 12) is warned about by check-config
 * and by the doctor, and still accepted. And the per-key maclen and
 * exclude_tcp_options that router key chains need.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

import t from 'tap';

import { routerInteropWarnings } from '../../src/config/interop';
import { loadConfigText } from '../../src/config/load';
import { runDoctor } from '../../src/doctor/doctor';
import { wireKeysOf } from '../../src/rotation/keyset';
import { fakeDeps, quietNetwork, scratchDir, writeConfig } from './doctor-fakes';

const REPO = resolve(__dirname, '..', '..', '..');
const BIN = join(REPO, 'bin', 'tcpao-proxy');
const ENV = { TCPAO_KEY: 'router-interop-key-Qw31', TCPAO_KEY_2: 'router-interop-key-Er42' };

const TERMINATOR = '[terminator]\nlisten_ao = "127.0.0.1:1790"\nforward_plain = "127.0.0.1:11019"\n\n';

function singleKey(alg: string, extra = ''): string {
  return `[[ao_policy]]\nname = "router"\npeer_ip = "192.0.2.1"\nkeyid = 3\nmac_alg = "${alg}"\nkey_source = "env:TCPAO_KEY"\n${extra}`;
}

const TWO_KEYS =
  '[[ao_policy]]\nname = "rotating"\npeer_ip = "192.0.2.9"\n\n' +
  '[[ao_policy.key]]\nsend_id = 1\nrecv_id = 1\nmac_alg = "aes-128-cmac"\nkey_source = "env:TCPAO_KEY"\nrole = "preferred"\n\n' +
  '[[ao_policy.key]]\nsend_id = 2\nrecv_id = 2\nmac_alg = "hmac-sha256"\nkey_source = "env:TCPAO_KEY_2"\n';

function warningsOf(text: string): string[] {
  const { config } = loadConfigText(text, { env: ENV, source: 'test.toml', baseDir: '/nonexistent' });
  return routerInteropWarnings(config.ao_policy.map((policy) => ({ index: policy.index, policy }))).map((warning) => warning.path);
}

t.test('the RFC 5926 pair with 12-byte MACs draws no warning', async (t) => {
  t.same(warningsOf(TERMINATOR + singleKey('hmac-sha1')), []);
  t.same(warningsOf(TERMINATOR + singleKey('aes-128-cmac', 'maclen = 12\nexclude_tcp_options = true\n')), []);
});

t.test('hmac-sha256 and other MAC lengths are named by their TOML path', async (t) => {
  t.same(warningsOf(TERMINATOR + singleKey('hmac-sha256')), ['ao_policy[0].mac_alg']);
  t.same(warningsOf(TERMINATOR + singleKey('hmac-sha1', 'maclen = 16\n')), ['ao_policy[0].maclen']);
  t.same(warningsOf(TERMINATOR + TWO_KEYS), ['ao_policy[0].key[1].mac_alg'], 'each key of a key list on its own');
  t.same(
    warningsOf(`${TERMINATOR}${singleKey('hmac-sha1')}\n${TWO_KEYS.replace('192.0.2.9', '192.0.2.10')}`),
    ['ao_policy[1].key[1].mac_alg'],
    'with the index of its policy',
  );
});

function checkConfig(path: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, 'check-config', '--config', path], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...ENV } }, (error, stdout, stderr) => {
      done({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

t.test('check-config lists router interop warnings and still accepts the config', async (t) => {
  const dir = scratchDir(t);
  const sha256 = await checkConfig(writeConfig(dir, TERMINATOR + singleKey('hmac-sha256', 'maclen = 16\n'), 'sha256.toml'));
  t.equal(sha256.status, 0, 'exit status 0: a warning, not a refusal');
  t.equal(sha256.stderr, '');
  const notes = sha256.stdout.split('\n').filter((line) => line.startsWith('  router interop: '));
  t.equal(notes.length, 2, 'one line for the algorithm, one for the MAC length');
  t.match(notes[0], /ao_policy\[0\]\.mac_alg: hmac-sha256 is not an RFC 5926 algorithm: .* needs hmac-sha1 or aes-128-cmac; see docs\/routers\.md$/);
  t.match(notes[1], /ao_policy\[0\]\.maclen: 16-byte MACs do not interoperate with routers, .* use maclen = 12 \(the default\)/);

  const sha1 = await checkConfig(writeConfig(dir, TERMINATOR + singleKey('hmac-sha1'), 'sha1.toml'));
  t.equal(sha1.status, 0);
  t.notMatch(sha1.stdout, /router interop/, 'nothing to say about hmac-sha1 with 12-byte MACs');
});

t.test('the doctor warns in config.router_interop and the report stays ok', async (t) => {
  const dir = scratchDir(t);
  const warned = await runDoctor(fakeDeps({ env: ENV, ...quietNetwork }), { configPath: writeConfig(dir, TERMINATOR + TWO_KEYS, 'two.toml') });
  const interop = warned.checks.find((check) => check.id === 'config.router_interop');
  t.equal(interop?.status, 'warn');
  t.match(interop?.finding, /^ao_policy\[0\]\.key\[1\]\.mac_alg: hmac-sha256 is not an RFC 5926 algorithm/);
  t.match(interop?.remedy, /^nothing to do when the peer is another tcpao-proxy sidecar; for a router peer: /);
  t.equal(warned.checks.find((check) => check.id === 'config.valid')?.status, 'pass', 'the config itself is valid');
  t.equal(warned.ok, true, 'a warning does not fail the report');

  const clean = await runDoctor(fakeDeps({ env: ENV, ...quietNetwork }), { configPath: writeConfig(dir, TERMINATOR + singleKey('aes-128-cmac'), 'cmac.toml') });
  const passed = clean.checks.find((check) => check.id === 'config.router_interop');
  t.equal(passed?.status, 'pass');
  t.equal(passed?.finding, 'every key uses hmac-sha1 or aes-128-cmac with 12-byte MACs, as routers do');

  const hostOnly = await runDoctor(fakeDeps({ env: ENV }), {});
  t.notOk(hostOnly.checks.some((check) => check.id === 'config.router_interop'), 'without --config there is no policy to judge');
});

t.test('a key table may override the policy maclen and exclude_tcp_options, as router key chains do per key', async (t) => {
  const text =
    TERMINATOR +
    '[[ao_policy]]\nname = "junos"\npeer_ip = "192.0.2.1"\nmaclen = 16\n\n' +
    '[[ao_policy.key]]\nsend_id = 2\nrecv_id = 9\nmac_alg = "hmac-sha1"\nkey_source = "env:TCPAO_KEY"\nrole = "preferred"\nmaclen = 12\n\n' +
    '[[ao_policy.key]]\nsend_id = 3\nrecv_id = 10\nmac_alg = "aes-128-cmac"\nkey_source = "env:TCPAO_KEY_2"\nmaclen = 12\nexclude_tcp_options = true\n';
  const { config } = loadConfigText(text, { env: ENV, source: 'test.toml', baseDir: '/nonexistent' });
  const policy = config.activePolicies[0];
  if (policy === undefined) throw new Error('no active policy');
  t.same(
    wireKeysOf(policy).map((key) => [key.sendId, key.maclen, key.excludeOptions]),
    [
      [2, 12, false],
      [3, 12, true],
    ],
    'each key reaches the addon with its own MAC length and options flag',
  );
  t.same(warningsOf(text), [], 'the policy maclen of 16 applies to no key, so routers are not warned about');
  t.same(
    warningsOf(text.replace('role = "preferred"\nmaclen = 12', 'role = "preferred"\nmaclen = 16')),
    ['ao_policy[0].key[0].maclen'],
    'a key overriding maclen to 16 is named by its table',
  );
  t.same(
    warningsOf(text.replace('role = "preferred"\nmaclen = 12\n', 'role = "preferred"\n')),
    ['ao_policy[0].maclen'],
    'the policy maclen is named while some key uses it',
  );

  const mistyped = TERMINATOR + '[[ao_policy]]\nname = "x"\npeer_ip = "192.0.2.1"\n\n[[ao_policy.key]]\nsend_id = 1\nrecv_id = 1\nmac_alg = "hmac-sha1"\nkey_source = "env:TCPAO_KEY"\nrole = "preferred"\nmaclen = 2\n';
  t.throws(() => loadConfigText(mistyped, { env: ENV, source: 'test.toml', baseDir: '/nonexistent' }), {
    code: 'ERR_TCPAO_CONFIG_INVALID',
    message: /ao_policy\[0\]\.key\[0\]\.maclen: expected an integer from 4 to 16, got 2/,
  });
});
