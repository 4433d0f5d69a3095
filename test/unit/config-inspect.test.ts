/**
 * The one config inspection: it returns every problem and warning with the
 * valid policies and what each key resolved to, and the loader throws exactly
 * those problems.
 */
import t from 'tap';

import { inspectConfigText, wipeInspectedKeys } from '../../src/config/inspect.js';
import { ConfigError, loadConfigText } from '../../src/config/load.js';

const ENV = { TCPAO_KEY: 'inspect-test-key-Q7' };
const OPTIONS = { env: ENV, source: 'test.toml', baseDir: '/nonexistent' };

const TERMINATOR = '[terminator]\nlisten_ao = "0.0.0.0:1790"\nforward_plain = "10.0.0.9:11019"\n';
const GOOD = '[[ao_policy]]\nname = "good"\npeer_ip = "10.0.0.2"\nkeyid = 1\nmac_alg = "hmac-sha256"\nkey_source = "env:TCPAO_KEY"\n';
const UNSET = '[[ao_policy]]\nname = "unset"\npeer_ip = "10.0.0.3"\nkeyid = 2\nmac_alg = "hmac-sha256"\nkey_source = "env:NOT_SET"\n';

t.test('a config with one unresolvable key: its problem, the valid policies with their keys, the warnings, no config', async (t) => {
  const text = `${TERMINATOR}\n${GOOD}\n${UNSET}`;
  const inspection = inspectConfigText(text, OPTIONS);
  t.teardown(() => wipeInspectedKeys(inspection));
  t.equal(inspection.config, undefined);
  t.equal(inspection.parsed?.mode, 'terminator', 'the document itself passes the schema');
  t.same(
    inspection.problems.map((problem) => `${problem.code} ${problem.path}`),
    ['ERR_TCPAO_KEY_SOURCE ao_policy[1].key_source'],
  );
  t.same(
    inspection.warnings.map((warning) => `${warning.code} ${warning.path}`),
    [
      'WARN_TCPAO_PLAIN_LEG_NOT_LOOPBACK terminator.forward_plain',
      // Both policies use hmac-sha256, which routers do not offer; the unresolvable key does not hide the warning.
      'WARN_TCPAO_ROUTER_MAC_ALG ao_policy[0].mac_alg',
      'WARN_TCPAO_ROUTER_MAC_ALG ao_policy[1].mac_alg',
    ],
  );
  t.same(inspection.policies.map((policy) => policy.index), [0, 1]);
  t.equal(inspection.policies[0]?.keys[0]?.secret?.byteLength, Buffer.byteLength(ENV.TCPAO_KEY));
  t.equal(inspection.policies[1]?.keys[0]?.secret, undefined);
  t.match(inspection.policies[1]?.keys[0]?.problem?.message, /NOT_SET is not set/);

  const thrown = t.throws(() => loadConfigText(text, OPTIONS)) as unknown;
  t.ok(thrown instanceof ConfigError);
  t.same((thrown as ConfigError).problems, inspection.problems, 'the loader throws the inspection\'s problems, word for word');
});

t.test('wipeInspectedKeys zeroes every key an inspection resolved', async (t) => {
  const inspection = inspectConfigText(`${TERMINATOR}\n${GOOD}`, OPTIONS);
  const secret = inspection.config?.ao_policy[0]?.key;
  t.ok(secret !== undefined, 'a valid config carries its key');
  wipeInspectedKeys(inspection);
  const bytes = secret?.reveal() ?? new Uint8Array([1]);
  t.ok(bytes.every((byte) => byte === 0), 'the key bytes are zero');
});

t.test('an unparsable config: its one syntax problem and nothing else', async (t) => {
  const inspection = inspectConfigText('[terminator', OPTIONS);
  t.equal(inspection.document, undefined);
  t.same(inspection.policies, []);
  t.same(inspection.problems.map((problem) => problem.code), ['ERR_TCPAO_CONFIG_SYNTAX']);
});
