/**
 * Config loading in process: defaults, freezing, the meaning of peer_port and
 * policy selection per mode, id overlaps, problem collection and warnings.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import {
  ConfigError,
  loadConfigFile,
  loadConfigFileAsync,
  loadConfigText,
  MAX_CONFIG_BYTES,
  type LoadOptions,
  type SidecarConfig,
} from '../../src/config/load.js';
import { SecretKey } from '../../src/config/keys.js';
import { GLOBAL_DEFAULTS, MAX_KEYS_PER_SOCKET } from '../../src/config/schema.js';
import { hasCode, isUserError } from '../../src/errors.js';

const ENV = { TCPAO_KEY: 'unit-test-key-Kx81', OTHER_KEY: 'unit-test-other-Pz02' };

function load(text: string, options: LoadOptions = {}) {
  return loadConfigText(text, { env: ENV, ...options, source: 'test.toml', baseDir: '/nonexistent' });
}

function problemsOf(text: string, options: LoadOptions = {}): string[] {
  try {
    load(text, options);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((problem) => `${problem.code} ${problem.path}: ${problem.message}`);
    throw err;
  }
  throw new Error('config unexpectedly valid');
}

function policy(fields: Record<string, string | number | boolean>): string {
  const defaults = { name: 'p', peer_ip: '10.0.0.2', keyid: 1, mac_alg: 'hmac-sha256', key_source: 'env:TCPAO_KEY' };
  const lines = Object.entries({ ...defaults, ...fields }).map(([key, value]) => `${key} = ${JSON.stringify(value)}`);
  return `[[ao_policy]]\n${lines.join('\n')}\n`;
}

const INITIATOR = '[initiator]\nlisten_plain = "127.0.0.1:5000"\nremote_ao = "10.0.0.2:1790"\n';
const TERMINATOR = '[terminator]\nlisten_ao = "0.0.0.0:1790"\nforward_plain = "127.0.0.1:11019"\n';

t.test('an empty [global] (or none) takes every default', async (t) => {
  const { config } = load(`${INITIATOR}\n${policy({})}`);
  t.same(config.global, GLOBAL_DEFAULTS);
  t.same(
    { ...GLOBAL_DEFAULTS },
    {
      log_format: 'json',
      log_level: 'info',
      idle_timeout_secs: 120,
      tcp_keepalive: true,
      keepalive_time_secs: 30,
      keepalive_intvl_secs: 10,
      keepalive_probes: 3,
      connect_timeout_secs: 10,
      max_connections: 1_024,
      max_connections_per_peer: 256,
      shutdown_timeout_secs: 8,
      listen_backlog: 511,
      metrics_allow_remote: false,
    },
    'the documented defaults',
  );
  const [only] = config.ao_policy;
  t.ok(only);
  t.equal(only?.send_id, 1, 'send_id defaults to keyid');
  t.equal(only?.recv_id, 1, 'recv_id defaults to keyid');
  t.equal(only?.peer_port, 0, 'peer_port defaults to 0 (any)');
  t.equal(only?.maclen, 12, 'maclen defaults to the RFC 5925 default');
  t.equal(only?.exclude_tcp_options, false);
  t.equal(only?.vrf_ifindex, 0);
  t.same(only?.peer_ip, { address: '10.0.0.2', prefixLength: 32, family: 4 });
  t.same(only?.key_source, { kind: 'env', encoding: 'raw', ref: 'TCPAO_KEY' });
});

t.test('values given override the defaults, and explicit ids win over keyid', async (t) => {
  const { config } = load(
    `[global]\nidle_timeout_secs = 0\nlog_format = "human"\n\n${INITIATOR}\n${policy({ keyid: 5, send_id: 6, recv_id: 7, maclen: 16 })}`,
  );
  t.equal(config.global.idle_timeout_secs, 0, '0 is kept (idle timeout off)');
  t.equal(config.global.log_format, 'human');
  t.equal(config.global.keepalive_probes, 3);
  t.equal(config.ao_policy[0]?.send_id, 6);
  t.equal(config.ao_policy[0]?.recv_id, 7);
  t.equal(config.ao_policy[0]?.maclen, 16);
});

t.test('the loaded config is frozen all the way down', async (t) => {
  const { config, warnings } = load(`${INITIATOR}\n${policy({})}`);
  const mutable = config as unknown as Record<string, unknown> & { global: Record<string, unknown> };
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.global));
  t.ok(Object.isFrozen(config.ao_policy));
  t.ok(Object.isFrozen(config.ao_policy[0]));
  t.ok(Object.isFrozen(config.ao_policy[0]?.peer_ip));
  t.ok(Object.isFrozen(config.activePolicies));
  t.ok(Object.isFrozen(warnings));
  t.throws(() => {
    mutable.global['idle_timeout_secs'] = 1;
  }, TypeError);
  t.throws(() => {
    (config.ao_policy as unknown as unknown[]).push({});
  }, TypeError);
  t.ok(config.ao_policy[0]?.key instanceof SecretKey, 'the key is a SecretKey');
  t.equal(config.ao_policy[0]?.key.byteLength, Buffer.byteLength(ENV.TCPAO_KEY));
});

t.test('the mode is the section present and is discriminated', async (t) => {
  const initiator: SidecarConfig = load(`${INITIATOR}\n${policy({})}`).config;
  t.equal(initiator.mode, 'initiator');
  if (initiator.mode === 'initiator') t.same(initiator.initiator.remote_ao, { host: '10.0.0.2', port: 1790, family: 4 });
  const terminator = load(`${TERMINATOR}\n${policy({})}`).config;
  t.equal(terminator.mode, 'terminator');
  if (terminator.mode === 'terminator') t.same(terminator.terminator.listen_ao, { host: '0.0.0.0', port: 1790, family: 4 });
});

t.test('--mode must agree with the section', async (t) => {
  t.same(problemsOf(`${TERMINATOR}\n${policy({})}`, { mode: 'initiator' }), [
    "ERR_TCPAO_MODE_MISMATCH terminator: --mode initiator was given but this config has a [terminator] section; run with --mode terminator or use the initiator's config",
  ]);
  t.equal(load(`${TERMINATOR}\n${policy({})}`, { mode: 'terminator' }).config.mode, 'terminator');
});

t.test('initiator: policies applying to remote_ao are selected, in file order', async (t) => {
  const text =
    `${INITIATOR}\n` +
    policy({ name: 'lan', peer_ip: '10.0.0.0/24', keyid: 1 }) +
    policy({ name: 'elsewhere', peer_ip: '10.9.0.2', keyid: 1 }) +
    policy({ name: 'host-any-port', peer_ip: '10.0.0.2', keyid: 2, peer_port: 0 }) +
    policy({ name: 'other-port', peer_ip: '10.0.0.2', keyid: 3, peer_port: 179 });
  const { config, warnings } = load(text);
  t.same(
    config.activePolicies.map((p) => p.name),
    ['lan', 'host-any-port'],
  );
  t.same(
    config.activePolicies.map((p) => p.index),
    [0, 2],
  );
  t.equal(config.ao_policy.length, 4, 'every policy is kept in ao_policy');
  // The policies' hmac-sha256 also draws WARN_TCPAO_ROUTER_MAC_ALG (test/unit/config-interop.test.ts); only the unused ones here.
  t.same(
    warnings.filter((w) => w.code === 'WARN_TCPAO_POLICY_UNUSED').map((w) => `${w.path}: ${w.message}`),
    [
      'ao_policy[1]: not used on this initiator: peer_ip 10.9.0.2/32 does not contain 10.0.0.2',
      "ao_policy[3]: not used on this initiator: peer_port 179 differs from remote_ao's port 1790",
    ],
  );
});

t.test('initiator: the spec layout (peer_port = remote port = 1790) works as written', async (t) => {
  const { config } = load(`${INITIATOR}\n${policy({ peer_port: 1790 })}`);
  t.equal(config.activePolicies.length, 1);
});

t.test('initiator: a config that would dial without TCP-AO is invalid', async (t) => {
  t.same(problemsOf(`${INITIATOR}\n${policy({ peer_ip: '10.0.1.2', peer_port: 1790 })}`), [
    'ERR_TCPAO_CONFIG_INVALID initiator.remote_ao: no [[ao_policy]] applies to 10.0.0.2:1790 (ao_policy[0]: peer_ip 10.0.1.2/32 does not contain 10.0.0.2); ' +
      'the initiator never dials without TCP-AO: add a policy whose peer_ip contains this address and whose peer_port is 0 or this port',
  ]);
  t.match(problemsOf(`${INITIATOR}\n${policy({ peer_port: 179 })}`)[0], /peer_port 179 differs from remote_ao's port 1790/);
  t.match(problemsOf(`${INITIATOR}\n${policy({ peer_ip: '2001:db8::2' })}`)[0], /does not contain 10\.0\.0\.2/);
});

t.test('terminator: every policy is installed; peer_port must be 0 or the wire port', async (t) => {
  const text =
    `${TERMINATOR}\n` +
    policy({ name: 'a', peer_ip: '10.0.0.1', peer_port: 1790 }) +
    policy({ name: 'b', peer_ip: '10.0.1.0/24', peer_port: 0, keyid: 2 });
  t.same(
    load(text).config.activePolicies.map((p) => p.name),
    ['a', 'b'],
  );
  t.same(problemsOf(`${TERMINATOR}\n${policy({ peer_port: 5000 })}`), [
    "ERR_TCPAO_CONFIG_INVALID ao_policy[0].peer_port: 5000 differs from listen_ao's port 1790; on a terminator peer_port names the AO wire port, " +
      'so set it to 1790 or 0 (the kernel matches keys by address only)',
  ]);
});

t.test('terminator: the listener serves one address family (it is IPV6_V6ONLY)', async (t) => {
  const v6 = TERMINATOR.replace('0.0.0.0:1790', '[::]:1790');
  t.equal(load(`${v6}\n${policy({ peer_ip: '2001:db8::1' })}${policy({ name: 'lan', peer_ip: '2001:db8:1::/48' })}`).config.activePolicies.length, 2);
  t.same(problemsOf(`${v6}\n${policy({ peer_ip: '10.0.0.1' })}`), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].peer_ip: IPv4 peer 10.0.0.1/32 cannot reach the IPv6 listener [::]:1790; ' +
      'an AO listener serves one address family: give listen_ao an IPv4 address or run a second terminator',
  ]);
  t.match(problemsOf(`${TERMINATOR}\n${policy({ peer_ip: '2001:db8::1' })}`)[0], /^ERR_TCPAO_CONFIG_INVALID ao_policy\[0\]\.peer_ip: IPv6 peer/);
});

t.test('overlapping peers must not share a send_id or a recv_id (kernel EEXIST)', async (t) => {
  const clash = (a: Record<string, string | number>, b: Record<string, string | number>) =>
    problemsOf(`${TERMINATOR}\n${policy({ name: 'a', ...a })}${policy({ name: 'b', ...b })}`);
  t.match(clash({ keyid: 1 }, { keyid: 1 })[0], /ao_policy\[1\]: send_id 1 and recv_id 1 already used by ao_policy\[0\] \("a"\)/);
  t.match(clash({ keyid: 1, recv_id: 2 }, { keyid: 1, recv_id: 3 })[0], /ao_policy\[1\]: send_id 1 already used/);
  t.match(clash({ keyid: 4, send_id: 9 }, { keyid: 4, send_id: 8 })[0], /ao_policy\[1\]: recv_id 4 already used/);
  t.match(clash({ peer_ip: '10.0.0.0/8', keyid: 1 }, { peer_ip: '10.1.2.3', keyid: 1 })[0], /overlapping peer \(10\.1\.2\.3\/32 and 10\.0\.0\.0\/8\)/);
  t.match(clash({ peer_ip: '0.0.0.0/0', keyid: 1 }, { keyid: 1 })[0], /EEXIST/);
  t.match(clash({ keyid: 1, vrf_ifindex: 3 }, { keyid: 1 })[0], /already used/, 'a key without VRF clashes with any VRF');
  const fine = (a: Record<string, string | number>, b: Record<string, string | number>) =>
    load(`${TERMINATOR}\n${policy({ name: 'a', ...a })}${policy({ name: 'b', ...b })}`).config.ao_policy.length;
  t.equal(fine({ keyid: 1 }, { keyid: 2 }), 2, 'distinct ids for the same peer: a rollover pair');
  t.equal(fine({ keyid: 1, send_id: 1, recv_id: 2 }, { keyid: 2, send_id: 2, recv_id: 1 }), 2, 'crossed ids are allowed');
  t.equal(fine({ peer_ip: '10.0.0.1' }, { peer_ip: '10.0.0.2' }), 2, 'same ids, different peers');
  t.equal(fine({ keyid: 1, vrf_ifindex: 3 }, { keyid: 1, vrf_ifindex: 4 }), 2, 'same ids in different VRFs');
});

t.test('duplicate policy names are refused', async (t) => {
  t.same(problemsOf(`${TERMINATOR}\n${policy({ keyid: 1 })}${policy({ keyid: 2, peer_ip: '10.0.0.3' })}`), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[1].name: "p" is already the name of ao_policy[0]; names must be unique',
  ]);
});

t.test('every problem is collected, schema and key problems together', async (t) => {
  const problems = problemsOf(
    `[global]\nlog_level = "loud"\nkeepalive_probes = 0\n\n${INITIATOR.replace('127.0.0.1:5000', '127.0.0.1:99999')}\n` +
      policy({ mac_alg: 'md5', key_source: 'env:UNSET_KEY' }) +
      policy({ name: 'q', keyid: 300, key_source: 'env:OTHER_KEY' }),
  );
  t.same(problems.map((p) => p.slice(0, p.indexOf(':'))), [
    'ERR_TCPAO_CONFIG_INVALID global.log_level',
    'ERR_TCPAO_CONFIG_INVALID global.keepalive_probes',
    'ERR_TCPAO_CONFIG_INVALID initiator.listen_plain',
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].mac_alg',
    'ERR_TCPAO_CONFIG_INVALID ao_policy[1].keyid',
    'ERR_TCPAO_KEY_SOURCE ao_policy[0].key_source',
  ]);
  t.equal(problems[3], 'ERR_TCPAO_CONFIG_INVALID ao_policy[0].mac_alg: not a known algorithm (3 characters); use hmac-sha1, hmac-sha256 or aes-128-cmac');
});

t.test('a ConfigError is a user error carrying its problems', async (t) => {
  let caught: unknown;
  try {
    load(`${INITIATOR}\n${policy({ key_source: 'env:UNSET_KEY' })}`);
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof ConfigError);
  t.ok(isUserError(caught));
  t.ok(hasCode(caught, 'ERR_TCPAO_KEY_SOURCE'), 'the error takes the code of its first problem');
  t.equal((caught as ConfigError).problems.length, 1);
});

t.test('unknown keys name the key and suggest the right one', async (t) => {
  t.same(problemsOf(`[global]\nidle_timeout = 5\n\n${INITIATOR}\n${policy({ mac_algo: 'hmac-sha1' })}`), [
    'ERR_TCPAO_CONFIG_INVALID global.idle_timeout: unknown key; did you mean "idle_timeout_secs"?',
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].mac_algo: unknown key; did you mean "mac_alg"?',
  ]);
  t.match(
    problemsOf(`[bogus]\nx = 1\n\n${INITIATOR}\n${policy({})}`)[0],
    '(top level): an unknown key (5 characters); allowed at the top level: global, initiator, terminator, ao_policy',
    'a name that is no near miss is described, not repeated',
  );
});

/** What `openssl rand -hex 16` and `openssl rand -base64 32` print: the shapes of keys pasted by mistake. */
const HEX_KEY = '9f86d081884c7d659a2feaa0c55ad015';
const BASE64_KEY = 'n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=';

t.test('a key pasted into a closed-set field (mac_alg, role, log_format, log_level) is described, never echoed', async (t) => {
  for (const key of [HEX_KEY, BASE64_KEY]) {
    const keyTable = `[[ao_policy.key]]\nsend_id = 1\nrecv_id = 1\nmac_alg = "${key}"\nkey_source = "env:TCPAO_KEY"\nrole = "${key}"\n`;
    const text =
      `[global]\nlog_format = "${key}"\nlog_level = "${key}"\n\n${INITIATOR}\n${policy({ mac_alg: key })}\n` +
      `[[ao_policy]]\nname = "q"\npeer_ip = "10.0.0.2"\n${keyTable}`;
    const problems = problemsOf(text);
    t.same(problems.sort(), [
      `ERR_TCPAO_CONFIG_INVALID ao_policy[0].mac_alg: not a known algorithm (${key.length} characters); use hmac-sha1, hmac-sha256 or aes-128-cmac`,
      `ERR_TCPAO_CONFIG_INVALID ao_policy[1].key[0].mac_alg: not a known algorithm (${key.length} characters); use hmac-sha1, hmac-sha256 or aes-128-cmac`,
      `ERR_TCPAO_CONFIG_INVALID ao_policy[1].key[0].role: not a known key role (${key.length} characters); use preferred, accept or deprecated`,
      `ERR_TCPAO_CONFIG_INVALID global.log_format: not a known log format (${key.length} characters); use json or human`,
      `ERR_TCPAO_CONFIG_INVALID global.log_level: not a known log level (${key.length} characters); use fatal, error, warn, info, debug, trace or silent`,
    ].sort());
    for (const problem of problems) t.notOk(problem.includes(key.slice(0, 8)), 'no part of the key');
  }
});

t.test('a near miss of an allowed value names the allowed value, not the input', async (t) => {
  t.same(problemsOf(`${INITIATOR}\n${policy({ mac_alg: 'HMAC-SHA256' })}`), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].mac_alg: unknown algorithm; did you mean "hmac-sha256"? use hmac-sha1, hmac-sha256 or aes-128-cmac',
  ]);
  t.same(problemsOf(`[global]\nlog_level = "warning"\n${INITIATOR}\n${policy({})}`), [
    'ERR_TCPAO_CONFIG_INVALID global.log_level: unknown log level; did you mean "warn"? use fatal, error, warn, info, debug, trace or silent',
  ]);
});

t.test('a key pasted as a TOML key name is described by its length, in every table', async (t) => {
  for (const key of [HEX_KEY, 'mac_alg0123456789abcdef0123456789abcdef']) {
    const text =
      `"${key}" = 1\n[global]\n"${key}" = 1\n${INITIATOR}"${key}" = 1\n` +
      `[[ao_policy]]\nname = "p"\npeer_ip = "10.0.0.2"\n"${key}" = 1\n[[ao_policy.key]]\nsend_id = 1\nrecv_id = 1\nmac_alg = "hmac-sha1"\n` +
      `key_source = "env:TCPAO_KEY"\nrole = "preferred"\n"${key}" = 1\n`;
    const problems = problemsOf(text);
    t.equal(problems.length, 5, 'one problem per table');
    for (const problem of problems) {
      t.match(problem, `an unknown key (${key.length} characters); allowed `);
      t.notOk(problem.includes(key.slice(0, 12)), `no part of the name: ${problem}`);
    }
  }
});

t.test('a policy name or key source ref that looks like key material is refused without echoing it', async (t) => {
  for (const key of [HEX_KEY, 'n4bQgYhMfWWaL9qgxVrQFaO']) {
    const problems = problemsOf(
      `${INITIATOR}\n${policy({ name: key })}\n${policy({ name: 'b', key_source: `env:${key}` })}\n${policy({ name: 'c', key_source: `file:${key}` })}`,
    );
    t.same(problems.map((problem) => problem.replace(/:.*/, '')), [
      'ERR_TCPAO_CONFIG_INVALID ao_policy[0].name',
      'ERR_TCPAO_CONFIG_INVALID ao_policy[1].key_source',
      'ERR_TCPAO_CONFIG_INVALID ao_policy[2].key_source',
    ]);
    t.match(problems[0], /looks like key material .* name the peer or link instead$/);
    t.match(problems[1], `looks like key material (${key.length} characters of hex or base64), not an environment variable name`);
    t.match(problems[2], 'not a file path: name where the key is, never the key itself');
    for (const problem of problems) t.notOk(problem.includes(key.slice(0, 8)), 'no part of the key');
  }
  const written = load(`${INITIATOR}\n${policy({ name: 'bmp-wire-2024-Primary' })}`);
  t.equal(written.config.ao_policy[0]?.name, 'bmp-wire-2024-Primary', 'names people write pass');
});

t.test('a TOML syntax error does not quote a character of the input', async (t) => {
  const problems = problemsOf(`[global]\nlog_format = "a\\${HEX_KEY}"\n`);
  t.same(problems, ['ERR_TCPAO_CONFIG_SYNTAX test.toml:2:17: not valid TOML: unknown escape character']);
});

t.test('syntax errors give file, line and column', async (t) => {
  t.same(problemsOf('[global]\nlog_format = \n'), ['ERR_TCPAO_CONFIG_SYNTAX test.toml:2:14: not valid TOML: unexpected character, expecting string, number, datetime, boolean, inline array or inline table']);
});

t.test('loadConfigFile: read errors, relative key paths, source', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'wire.key'), 'file-key-bytes-Qm4\n');
  writeFileSync(join(dir, 'c.toml'), `${INITIATOR}\n${policy({ key_source: 'file:wire.key' })}`);
  const { config } = loadConfigFile(join(dir, 'c.toml'), { env: {} });
  t.equal(config.source, join(dir, 'c.toml'));
  t.equal(config.ao_policy[0]?.key.byteLength, 'file-key-bytes-Qm4'.length, 'relative to the config directory, one newline stripped');
  t.same(Buffer.from(config.ao_policy[0]?.key.reveal() ?? []).toString(), 'file-key-bytes-Qm4');

  t.throws(() => loadConfigFile(join(dir, 'missing.toml')), {
    code: 'ERR_TCPAO_CONFIG_READ',
    problems: [{ code: 'ERR_TCPAO_CONFIG_READ', path: join(dir, 'missing.toml'), message: 'cannot be read: no such file (ENOENT); check --config' }],
  });
  t.throws(() => loadConfigFile(dir), { code: 'ERR_TCPAO_CONFIG_READ', problems: [{ message: 'is a directory; give the config file itself' }] });
});

t.test('a config path that is a FIFO or a device is refused at once (start, check-config, doctor and reload alike)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'config.fifo');
  execFileSync('mkfifo', [fifo]);
  const cases = [
    [fifo, 'a FIFO'],
    // A character device reports size 0: a size check on the path alone read it until memory ran out.
    ['/dev/zero', 'a character device'],
  ] as const;
  for (const [path, kind] of cases) {
    const expected = {
      code: 'ERR_TCPAO_CONFIG_READ',
      problems: [
        {
          code: 'ERR_TCPAO_CONFIG_READ',
          path,
          message: `is ${kind}, not a regular file; give the config file itself (a FIFO or device could block or never end)`,
        },
      ],
    };
    t.throws(() => loadConfigFile(path), expected, `sync: ${path}`);
    await t.rejects(loadConfigFileAsync(path), expected, `async: ${path}`);
  }
});

t.test('a config file starting with a UTF-8 BOM is refused with its own message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'bom.toml');
  writeFileSync(path, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${INITIATOR}\n${policy({})}`)]));
  const expected = {
    code: 'ERR_TCPAO_CONFIG_SYNTAX',
    problems: [{ code: 'ERR_TCPAO_CONFIG_SYNTAX', path, message: 'starts with a UTF-8 byte order mark (EF BB BF); save the file as UTF-8 without a BOM' }],
  };
  t.throws(() => loadConfigFile(path, { env: ENV }), expected);
  await t.rejects(loadConfigFileAsync(path, { env: ENV }), expected);
});

t.test('a config larger than 1 MiB is refused by size, and never read past the cap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'big.toml');
  writeFileSync(path, `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
  const expected = { code: 'ERR_TCPAO_CONFIG_READ', problems: [{ code: 'ERR_TCPAO_CONFIG_READ', message: `is ${MAX_CONFIG_BYTES + 3} bytes; a config is at most ${MAX_CONFIG_BYTES}` }] };
  t.throws(() => loadConfigFile(path), expected);
  await t.rejects(loadConfigFileAsync(path), expected);
});

t.test('loadConfigFileAsync reads the config and its key files under the same rules as loadConfigFile', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'wire.key'), 'file-key-bytes-Qm4\n');
  writeFileSync(join(dir, 'crlf.key'), 'file-key-bytes-Qm4\r\n');
  execFileSync('mkfifo', [join(dir, 'key.fifo')]);
  const twoPolicies =
    `${TERMINATOR}\n${policy({ name: 'a', peer_ip: '10.0.0.1', key_source: 'file:wire.key' })}\n` +
    `${policy({ name: 'b', peer_ip: '10.0.0.2', key_source: 'file:wire.key' })}`;
  writeFileSync(join(dir, 'good.toml'), twoPolicies);
  const { config } = await loadConfigFileAsync(join(dir, 'good.toml'), { env: {} });
  t.equal(config.source, join(dir, 'good.toml'));
  t.same(
    config.ao_policy.map((entry) => Buffer.from(entry.key.reveal()).toString()),
    ['file-key-bytes-Qm4', 'file-key-bytes-Qm4'],
    'one key file named twice gives both policies its bytes',
  );

  writeFileSync(
    join(dir, 'bad.toml'),
    `${TERMINATOR}\n${policy({ name: 'a', peer_ip: '10.0.0.1', key_source: 'file:key.fifo' })}\n` +
      `${policy({ name: 'b', peer_ip: '10.0.0.2', key_source: 'file:crlf.key' })}\n` +
      `${policy({ name: 'c', peer_ip: '10.0.0.3', key_source: 'file:missing.key' })}`,
  );
  const sync = (() => {
    try {
      loadConfigFile(join(dir, 'bad.toml'), { env: {} });
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  t.type(sync, ConfigError);
  await t.rejects(loadConfigFileAsync(join(dir, 'bad.toml'), { env: {} }), { code: 'ERR_TCPAO_KEY_SOURCE', problems: [...(sync as ConfigError).problems] }, 'the same problems, word for word');
  t.same(
    (sync as ConfigError).problems.map((problem) => `${problem.code} ${problem.path}`),
    ['ERR_TCPAO_KEY_SOURCE ao_policy[0].key_source', 'ERR_TCPAO_KEY_SOURCE ao_policy[1].key_source', 'ERR_TCPAO_KEY_SOURCE ao_policy[2].key_source'],
  );
});

/** `count` single-key policies for distinct /32 peers, so no ids clash. */
function manyPolicies(count: number, fields: Record<string, string | number> = {}): string {
  return Array.from({ length: count }, (_, i) =>
    policy({ name: `peer-${i}`, peer_ip: `10.${(i >> 8) & 255}.${i & 255}.2`, ...fields }),
  ).join('\n');
}

t.test('300 policies on a terminator are refused: its listener would hold more keys than a socket takes', async (t) => {
  t.same(problemsOf(`${TERMINATOR}\n${manyPolicies(300)}`), [
    `ERR_TCPAO_CONFIG_INVALID ao_policy: the AO listener would hold 300 keys (every key of every [[ao_policy]] but deprecated ones), ` +
      `more than the ${MAX_KEYS_PER_SOCKET} keys a socket takes: split the peers over several terminators or drop unused keys`,
  ]);
  t.equal(load(`${TERMINATOR}\n${manyPolicies(MAX_KEYS_PER_SOCKET)}`).config.ao_policy.length, MAX_KEYS_PER_SOCKET, 'exactly the limit is fine');
});

t.test('the key limit counts [[ao_policy.key]] tables, leaves deprecated keys out, and applies per initiator connection', async (t) => {
  const keyTables = (count: number, role: string) =>
    Array.from(
      { length: count },
      (_, i) => `[[ao_policy.key]]\nsend_id = ${i}\nrecv_id = ${i}\nmac_alg = "hmac-sha256"\nkey_source = "env:TCPAO_KEY"\nrole = "${i === 0 ? 'preferred' : role}"\n`,
    ).join('\n');
  const wide = (name: string, peer: string, count: number, role = 'accept', vrf = 0) =>
    `[[ao_policy]]\nname = "${name}"\npeer_ip = "${peer}"\nvrf_ifindex = ${vrf}\n${keyTables(count, role)}`;
  t.same(problemsOf(`${TERMINATOR}\n${wide('a', '10.0.0.1', 200)}\n${wide('b', '10.0.0.2', 57)}`), [
    `ERR_TCPAO_CONFIG_INVALID ao_policy: the AO listener would hold 257 keys (every key of every [[ao_policy]] but deprecated ones), ` +
      `more than the ${MAX_KEYS_PER_SOCKET} keys a socket takes: split the peers over several terminators or drop unused keys`,
  ]);
  t.ok(load(`${TERMINATOR}\n${wide('a', '10.0.0.1', 200)}\n${wide('b', '10.0.0.2', 100, 'deprecated')}`), 'deprecated keys are never installed on the listener');
  // Keys for one peer need distinct ids, so only keys in different VRFs can pass 256 on one connection.
  t.same(problemsOf(`${INITIATOR}\n${wide('a', '10.0.0.0/24', 200, 'accept', 4)}\n${wide('b', '10.0.0.2', 57, 'accept', 5)}\n${wide('c', '10.9.0.2', 200)}`), [
    `ERR_TCPAO_CONFIG_INVALID ao_policy: each connection to 10.0.0.2:1790 would hold 257 keys (every key but deprecated ones of the 2 policies ` +
      `that apply to it), more than the ${MAX_KEYS_PER_SOCKET} keys a socket takes: drop unused keys`,
  ], 'only the policies that apply to remote_ao count');
});
