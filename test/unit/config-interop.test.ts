/**
 * Router interop: per-key maclen and exclude_tcp_options (parse, inherit,
 * reject, carry to the addon's addKey and to reload comparisons), and the
 * coded interop warnings (inspection, check-config output).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { runCli } from '../../src/cli.js';
import { inspectConfigText, wipeInspectedKeys } from '../../src/config/inspect.js';
import { ConfigError, loadConfigText, type SidecarConfig } from '../../src/config/load.js';
import { WarningCodes } from '../../src/errors.js';
import { createBinding, type NativeAddon } from '../../src/native/index.js';
import { changedIdentities, generationFromConfig, keyIdentity, toKeySpec, wireKeysOf } from '../../src/policy/keyset.js';

const ENV = { TCPAO_KEY: 'interop-test-key-Wd61', TCPAO_KEY_2: 'interop-test-key-two-Lp07' };
const OPTIONS = { env: ENV, source: 'test.toml', baseDir: '/nonexistent' };
const TERMINATOR = '[terminator]\nlisten_ao = "127.0.0.1:1790"\nforward_plain = "127.0.0.1:11019"\n';

interface KeyFields {
  readonly sendId: number;
  readonly recvId: number;
  readonly role: string;
  readonly alg?: string;
  readonly source?: string;
  /** Written as is after the key's fields, e.g. "maclen = 16". */
  readonly extra?: string;
}

/** A terminator config with one policy; `policyExtra` lines go on the policy, each key's `extra` on its table. */
function withKeys(keys: readonly KeyFields[], policyExtra = ''): string {
  const tables = keys.map((key) =>
    [
      '[[ao_policy.key]]',
      `send_id = ${key.sendId}`,
      `recv_id = ${key.recvId}`,
      `mac_alg = "${key.alg ?? 'aes-128-cmac'}"`,
      `key_source = "${key.source ?? 'env:TCPAO_KEY'}"`,
      `role = "${key.role}"`,
      key.extra ?? '',
      '',
    ].join('\n'),
  );
  return `${TERMINATOR}\n[[ao_policy]]\nname = "router"\npeer_ip = "127.0.0.1"\n${policyExtra}\n${tables.join('\n')}`;
}

function single(alg: string, policyExtra = ''): string {
  return `${TERMINATOR}\n[[ao_policy]]\nname = "router"\npeer_ip = "127.0.0.1"\nkeyid = 1\nmac_alg = "${alg}"\nkey_source = "env:TCPAO_KEY"\n${policyExtra}\n`;
}

function load(text: string): SidecarConfig {
  return loadConfigText(text, OPTIONS).config;
}

function problemsOf(text: string): string[] {
  try {
    loadConfigText(text, OPTIONS);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((problem) => `${problem.code} ${problem.path}: ${problem.message}`);
    throw err;
  }
  return [];
}

function warningsOf(text: string): string[] {
  const inspection = inspectConfigText(text, OPTIONS);
  wipeInspectedKeys(inspection);
  return inspection.warnings.map((warning) => `${warning.code} ${warning.path}`);
}

const TWO_KEYS: readonly KeyFields[] = [
  { sendId: 10, recvId: 20, role: 'accept' },
  { sendId: 11, recvId: 21, role: 'preferred', source: 'env:TCPAO_KEY_2', extra: 'maclen = 16\nexclude_tcp_options = true' },
];

t.test('per-key maclen and exclude_tcp_options: a key sets its own, the others inherit the policy', async (t) => {
  const config = load(withKeys(TWO_KEYS, 'maclen = 12\nexclude_tcp_options = false'));
  const keys = config.ao_policy[0]?.keys ?? [];
  t.same(
    keys.map((key) => [key.send_id, key.maclen, key.exclude_tcp_options]),
    [
      [10, 12, false],
      [11, 16, true],
    ],
  );
  t.equal(config.ao_policy[0]?.maclen, 12, "the policy's own values stay its default");
  t.equal(config.ao_policy[0]?.exclude_tcp_options, false);

  const inherited = load(withKeys([{ sendId: 1, recvId: 2, role: 'preferred' }], 'maclen = 16\nexclude_tcp_options = true')).ao_policy[0];
  t.same([inherited?.keys[0]?.maclen, inherited?.keys[0]?.exclude_tcp_options], [16, true], 'a key without its own takes the policy values');

  const defaults = load(withKeys([{ sendId: 1, recvId: 2, role: 'preferred' }])).ao_policy[0];
  t.same([defaults?.keys[0]?.maclen, defaults?.keys[0]?.exclude_tcp_options], [12, false], 'and without either, the defaults 12 and false');

  const spec = load(single('hmac-sha1', 'maclen = 10\nexclude_tcp_options = true')).ao_policy[0];
  t.same([spec?.keys[0]?.maclen, spec?.keys[0]?.exclude_tcp_options], [10, true], 'the single-key form carries the policy values');
});

t.test('per-key options: bad values are refused with one coded line naming the key table', async (t) => {
  const key = (extra: string): KeyFields[] => [
    { sendId: 1, recvId: 1, role: 'accept' },
    { sendId: 2, recvId: 2, role: 'preferred', extra },
  ];
  t.same(problemsOf(withKeys(key('maclen = 20'))), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[1].maclen: expected an integer from 4 to 16, got 20',
  ]);
  t.same(problemsOf(withKeys(key('maclen = 3'))), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[1].maclen: expected an integer from 4 to 16, got 3',
  ]);
  t.same(problemsOf(withKeys(key('maclen = "12"'))), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[1].maclen: expected an integer from 4 to 16, got a string',
  ]);
  t.same(problemsOf(withKeys(key('exclude_tcp_options = "yes"'))), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[1].exclude_tcp_options: expected true or false, got a string',
  ]);
  t.same(problemsOf(withKeys(key('exclude_tcp_option = true'))), [
    'ERR_TCPAO_CONFIG_INVALID ao_policy[0].key[1].exclude_tcp_option: unknown key; did you mean "exclude_tcp_options"?',
  ]);
  for (const line of problemsOf(withKeys(key('maclen = 20')))) t.notMatch(line, /\n/, 'one line');
});

t.test("per-key options reach the addon's addKey call", async (t) => {
  const config = load(withKeys(TWO_KEYS));
  const added: { sendId: number; maclen: number; excludeOptions: boolean }[] = [];
  const unused = (): never => {
    throw new Error('not used by this test');
  };
  const addon: NativeAddon = {
    layout: unused,
    probe: () => ({ errno: 0, code: '' }),
    openSocket: unused,
    closeFd: unused,
    addKey: (_fd, key) => void added.push({ sendId: key.sendId, maclen: key.maclen, excludeOptions: key.excludeOptions }),
    deleteKey: unused,
    getKeys: unused,
    getInfo: unused,
    setInfo: unused,
    setKeepalive: unused,
    createListener: unused,
    connect: async () => unused(),
    hardenProcess: unused,
    takeEnv: unused,
  };
  const binding = createBinding(() => addon);
  for (const key of wireKeysOf(config.activePolicies[0] as SidecarConfig['activePolicies'][number])) binding.addKey(7, toKeySpec(key));
  t.same(added, [
    { sendId: 10, maclen: 12, excludeOptions: false },
    { sendId: 11, maclen: 16, excludeOptions: true },
  ]);
});

t.test('a key whose maclen or options flag changes under the same ids is a changed key on reload', async (t) => {
  const before = generationFromConfig(load(withKeys([{ sendId: 1, recvId: 2, role: 'preferred' }])), 1);
  const identity = keyIdentity({ peer: '127.0.0.1', prefixLength: 32, ifindex: 0, sendId: 1, recvId: 2 });
  const after = (extra: string) => generationFromConfig(load(withKeys([{ sendId: 1, recvId: 2, role: 'preferred', extra }])), 2);
  t.same([...changedIdentities(before, after(''))], [], 'nothing changed');
  t.same([...changedIdentities(before, after('maclen = 12'))], [], 'the default written out is no change');
  t.same([...changedIdentities(before, after('maclen = 16'))], [identity], 'a new maclen');
  t.same([...changedIdentities(before, after('exclude_tcp_options = true'))], [identity], 'a new options flag');
  const policyLevel = generationFromConfig(load(withKeys([{ sendId: 1, recvId: 2, role: 'preferred' }], 'exclude_tcp_options = true')), 2);
  t.same([...changedIdentities(before, policyLevel)], [identity], "a new policy value the key inherits");
});

t.test('interop warnings: hmac-sha256 and a maclen other than 12, each with its code and path', async (t) => {
  t.ok(WarningCodes.WARN_TCPAO_ROUTER_MAC_ALG.length > 0 && WarningCodes.WARN_TCPAO_ROUTER_MACLEN.length > 0, 'the codes are registered');
  t.same(warningsOf(single('hmac-sha256')), ['WARN_TCPAO_ROUTER_MAC_ALG ao_policy[0].mac_alg']);
  t.same(warningsOf(single('hmac-sha1', 'maclen = 16')), ['WARN_TCPAO_ROUTER_MACLEN ao_policy[0].maclen']);
  t.same(warningsOf(single('hmac-sha256', 'maclen = 16')), [
    'WARN_TCPAO_ROUTER_MAC_ALG ao_policy[0].mac_alg',
    'WARN_TCPAO_ROUTER_MACLEN ao_policy[0].maclen',
  ]);
  t.same(
    warningsOf(
      withKeys([
        { sendId: 1, recvId: 1, role: 'accept', alg: 'hmac-sha256' },
        { sendId: 2, recvId: 2, role: 'preferred', extra: 'maclen = 16' },
      ]),
    ),
    ['WARN_TCPAO_ROUTER_MAC_ALG ao_policy[0].key[0].mac_alg', 'WARN_TCPAO_ROUTER_MACLEN ao_policy[0].key[1].maclen'],
    'per key: the key table is named',
  );
  t.same(
    warningsOf(withKeys([{ sendId: 1, recvId: 1, role: 'accept' }, { sendId: 2, recvId: 2, role: 'preferred' }], 'maclen = 16')),
    ['WARN_TCPAO_ROUTER_MACLEN ao_policy[0].maclen'],
    "a policy maclen its keys inherit: one warning, at the policy",
  );
  t.same(
    warningsOf(withKeys([{ sendId: 1, recvId: 1, role: 'preferred', extra: 'maclen = 12' }], 'maclen = 16')),
    [],
    'a policy maclen every key overrides with 12 is not used',
  );
});

t.test('no interop warning for hmac-sha1 or aes-128-cmac with a 12-byte MAC', async (t) => {
  t.same(warningsOf(single('hmac-sha1')), []);
  t.same(warningsOf(single('aes-128-cmac', 'maclen = 12')), []);
  t.same(warningsOf(withKeys([{ sendId: 1, recvId: 1, role: 'accept', alg: 'hmac-sha1' }, { sendId: 2, recvId: 2, role: 'preferred' }])), []);
  t.ok(problemsOf(single('hmac-sha256', 'maclen = 16')).length === 0, 'a warned config is never refused');
});

t.test('check-config prints each interop warning as one line with its code, and still exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-interop-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const run = async (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const io = { stdout: (chunk: string) => void stdout.push(chunk), stderr: (chunk: string) => void stderr.push(chunk), env: ENV };
    const status = await runCli(['check-config', '--config', path], io, { runSidecar: async () => {} });
    return { status, stdout: stdout.join(''), stderr: stderr.join('') };
  };

  const warned = await run('warned.toml', withKeys([
    { sendId: 1, recvId: 1, role: 'accept', alg: 'hmac-sha256' },
    { sendId: 2, recvId: 2, role: 'preferred', extra: 'maclen = 16\nexclude_tcp_options = true' },
  ]));
  t.equal(warned.status, 0, 'warnings never fail check-config');
  t.equal(warned.stderr, '');
  const lines = warned.stdout.split('\n').filter((line) => line.includes('warning:'));
  t.same(
    lines.map((line) => /^ {2}warning: (WARN_TCPAO_[A-Z_]+): (\S+): (.+)$/.exec(line)?.slice(1, 3).join(' ')),
    ['WARN_TCPAO_ROUTER_MAC_ALG ao_policy[0].key[0].mac_alg', 'WARN_TCPAO_ROUTER_MACLEN ao_policy[0].key[1].maclen'],
  );
  t.match(lines[0], /hmac-sha256 is not an RFC 5926 algorithm .* use hmac-sha1 or aes-128-cmac towards a router/);
  t.match(lines[1], /maclen 16 differs from the 12 bytes \(96 bits\) routers use/);
  t.match(warned.stdout, 'aes-128-cmac, maclen 16, key ', 'the summary describes the preferred key with its own maclen');
  t.match(warned.stdout, 'exclude_tcp_options, key[0] maclen 12 options included', 'and names the key that differs from it');
  t.notOk(warned.stdout.includes(ENV.TCPAO_KEY) || warned.stdout.includes(ENV.TCPAO_KEY_2), 'no key bytes');

  const clean = await run('clean.toml', single('aes-128-cmac'));
  t.equal(clean.status, 0);
  t.notMatch(clean.stdout, /warning:/, 'no warning line for aes-128-cmac with 12');
});
