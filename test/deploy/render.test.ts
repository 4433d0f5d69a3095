import t, { type Test } from 'tap';
import TOML from '@iarna/toml';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hasCode } from '../../src/errors.js';
import { type Env, type Role, placeholders, renderTemplate } from '../../src/deploy/render.js';
import { renderConfigMain } from '../../src/deploy/render-main.js';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TEMPLATE_DIR = path.join(ROOT, 'deploy', 'config');
const RENDER_CONFIG = path.join(ROOT, 'scripts', 'render-config');
const KEY = 'k3y-that-must-never-appear-0123456789abcdef';

function template(role: Role): string {
  return readFileSync(path.join(TEMPLATE_DIR, `${role}.toml.tmpl`), 'utf8');
}

const INITIATOR_ENV: Env = { TCPAO_KEY: KEY, REMOTE_AO: '10.10.10.2:1790' };
const TERMINATOR_ENV: Env = { TCPAO_KEY: KEY, PEER_IP: '10.10.10.1' };

type Doc = Record<string, any>;

function expectRefusal(t: Test, role: Role, env: Env, code: string, variable: string): void {
  try {
    renderTemplate(template(role), env, role);
    t.fail(`expected ${code} for ${variable}`);
  } catch (err) {
    t.ok(hasCode(err, code as never), `${variable}: ${code}`);
    t.match((err as Error).message, variable, 'the message names the variable');
    t.notMatch((err as Error).message, /\n/, 'the message is one line');
    t.notMatch((err as Error).message, KEY, 'the message holds no key');
  }
}

t.test('templates are exactly the spec section 8 text', async (t) => {
  for (const role of ['initiator', 'terminator'] as const) {
    const names = placeholders(template(role)).map((p) => `${p.name}:${p.context}`);
    const section = role === 'initiator' ? ['LISTEN_PLAIN:string', 'REMOTE_AO:string'] : ['LISTEN_AO:string', 'FORWARD_PLAIN:string'];
    t.same(names, [...section, 'PEER_IP:string', 'PEER_PORT:bare', 'KEY_ID:bare'], `${role} placeholders`);
    t.match(template(role), /^key_source = "env:TCPAO_KEY"$/m);
  }
});

t.test('initiator renders with defaults derived from REMOTE_AO', async (t) => {
  const doc = TOML.parse(renderTemplate(template('initiator'), INITIATOR_ENV, 'initiator')) as Doc;
  t.same(doc.initiator, { listen_plain: '127.0.0.1:5000', remote_ao: '10.10.10.2:1790' });
  t.same(doc.ao_policy, [
    { name: 'bmp-wire', peer_ip: '10.10.10.2', peer_port: 1790, keyid: 1, mac_alg: 'hmac-sha256', key_source: 'env:TCPAO_KEY' },
  ]);
  t.equal(doc.global.log_format, 'json');
});

t.test('terminator renders with explicit values, IPv6 endpoints and a key id', async (t) => {
  const env: Env = { TCPAO_KEY: KEY, PEER_IP: 'fd00:10:10::1', LISTEN_AO: '[::]:1790', FORWARD_PLAIN: '[::1]:11019', KEY_ID: '200', PEER_PORT: '0' };
  const doc = TOML.parse(renderTemplate(template('terminator'), env, 'terminator')) as Doc;
  t.same(doc.terminator, { listen_ao: '[::]:1790', forward_plain: '[::1]:11019' });
  t.equal(doc.ao_policy[0].peer_ip, 'fd00:10:10::1');
  t.equal(doc.ao_policy[0].peer_port, 0);
  t.equal(doc.ao_policy[0].keyid, 200);
});

t.test('terminator defaults: listen 0.0.0.0:1790, forward 127.0.0.1:11019, any peer port, key id 1', async (t) => {
  const doc = TOML.parse(renderTemplate(template('terminator'), TERMINATOR_ENV, 'terminator')) as Doc;
  t.same(doc.terminator, { listen_ao: '0.0.0.0:1790', forward_plain: '127.0.0.1:11019' });
  t.equal(doc.ao_policy[0].peer_port, 0);
  t.equal(doc.ao_policy[0].keyid, 1);
});

t.test('TCPAO_KEY_FILE turns the key source into file:PATH', async (t) => {
  const env: Env = { ...TERMINATOR_ENV, TCPAO_KEY: undefined, TCPAO_KEY_FILE: '/run/secrets/tcpao_key' };
  const doc = TOML.parse(renderTemplate(template('terminator'), env, 'terminator')) as Doc;
  t.equal(doc.ao_policy[0].key_source, 'file:/run/secrets/tcpao_key');
  expectRefusal(t, 'terminator', { ...env, TCPAO_KEY_FILE: 'relative/key' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'TCPAO_KEY_FILE');
  expectRefusal(t, 'terminator', { ...env, TCPAO_KEY_FILE: '/run/"x' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'TCPAO_KEY_FILE');
});

t.test('no key in the output, even when the key is set in every plausible variable', async (t) => {
  const env: Env = { ...INITIATOR_ENV, TCPAO_KEY_BMP: KEY, KEY: KEY, SECRET: KEY };
  const rendered = renderTemplate(template('initiator'), env, 'initiator');
  t.notMatch(rendered, KEY);
});

t.test('refuses a missing required variable', async (t) => {
  expectRefusal(t, 'initiator', { TCPAO_KEY: KEY }, 'ERR_TCPAO_RENDER_MISSING_VAR', 'REMOTE_AO');
  expectRefusal(t, 'terminator', { TCPAO_KEY: KEY }, 'ERR_TCPAO_RENDER_MISSING_VAR', 'PEER_IP');
  expectRefusal(t, 'terminator', { TCPAO_KEY: KEY, PEER_IP: '' }, 'ERR_TCPAO_RENDER_MISSING_VAR', 'PEER_IP');
});

t.test('refuses values that would break the TOML', async (t) => {
  expectRefusal(t, 'initiator', { ...INITIATOR_ENV, LISTEN_PLAIN: '127.0.0.1:5000"\nevil = "1' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'LISTEN_PLAIN');
  expectRefusal(t, 'initiator', { ...INITIATOR_ENV, LISTEN_PLAIN: '127.0.0.1:5000"' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'LISTEN_PLAIN');
  expectRefusal(t, 'initiator', { ...INITIATOR_ENV, REMOTE_AO: '10.10.10.2:1790\n' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'REMOTE_AO');
  expectRefusal(t, 'initiator', { ...INITIATOR_ENV, REMOTE_AO: '10.10.10.2:1790\\' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'REMOTE_AO');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, PEER_IP: '10.10.10.1\u0000' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'PEER_IP');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, FORWARD_PLAIN: '127.0.0.1:11019\t' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'FORWARD_PLAIN');
});

t.test('refuses non-integer and out-of-range numbers', async (t) => {
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, PEER_PORT: '17x' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'PEER_PORT');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, PEER_PORT: '1790\nkeyid = 9' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'PEER_PORT');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, PEER_PORT: '-1' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'PEER_PORT');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, PEER_PORT: '65536' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'PEER_PORT');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, KEY_ID: '256' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'KEY_ID');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, KEY_ID: '1.5' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'KEY_ID');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, KEY_ID: '0x1' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'KEY_ID');
});

t.test('refuses malformed endpoints and peer addresses', async (t) => {
  expectRefusal(t, 'initiator', { ...INITIATOR_ENV, REMOTE_AO: 'gobmp:1790' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'REMOTE_AO');
  expectRefusal(t, 'initiator', { ...INITIATOR_ENV, REMOTE_AO: '0.0.0.0:1790' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'REMOTE_AO');
  expectRefusal(t, 'initiator', { ...INITIATOR_ENV, REMOTE_AO: '10.10.10.2' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'REMOTE_AO');
  expectRefusal(t, 'terminator', { ...TERMINATOR_ENV, PEER_IP: '10.10.10.1:1790' }, 'ERR_TCPAO_RENDER_INVALID_VALUE', 'PEER_IP');
});

t.test('refuses a template that would write a key variable', async (t) => {
  const bad = `${template('initiator')}\nextra = "\${TCPAO_KEY}"\n`;
  t.throws(() => renderTemplate(bad, INITIATOR_ENV, 'initiator'), { code: 'ERR_TCPAO_RENDER_TEMPLATE' });
  const noKeySource = template('initiator').replace('key_source = "env:TCPAO_KEY"', '');
  t.throws(() => renderTemplate(noKeySource, INITIATOR_ENV, 'initiator'), { code: 'ERR_TCPAO_RENDER_TEMPLATE' });
});

t.test('renderConfigMain: exit codes and one coded line', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'render-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const output = path.join(dir, 'config.toml');
  let out = '';
  let err = '';
  const io = (env: Env) => ({ env, stdout: (s: string) => (out += s), stderr: (s: string) => (err += s) });
  const args = ['--role', 'initiator', '--template', path.join(TEMPLATE_DIR, 'initiator.toml.tmpl'), '--output', output];

  t.equal(renderConfigMain(args, io(INITIATOR_ENV)), 0);
  t.equal(statSync(output).mode & 0o777, 0o644);
  t.notMatch(readFileSync(output, 'utf8'), KEY);
  t.equal(err, '');

  err = '';
  t.equal(renderConfigMain(args, io({ TCPAO_KEY: KEY, REMOTE_AO: '10.10.10.2:99999' })), 2);
  t.match(err, /^render-config: ERR_TCPAO_RENDER_INVALID_VALUE: REMOTE_AO .*\n$/);
  t.equal(err.split('\n').length, 2, 'exactly one line');

  err = '';
  t.equal(renderConfigMain(['--role', 'relay', '--template', 'x', '--output', '-'], io(INITIATOR_ENV)), 2);
  t.match(err, /ERR_TCPAO_USAGE/);

  err = '';
  t.equal(renderConfigMain(['--role', 'initiator', '--template', path.join(dir, 'absent.tmpl'), '--output', '-'], io(INITIATOR_ENV)), 2);
  t.match(err, /ERR_TCPAO_RENDER_TEMPLATE.*ENOENT/);

  err = '';
  t.equal(renderConfigMain([...args.slice(0, 4), '--output', path.join(dir, 'no', 'such', 'dir.toml')], io(INITIATOR_ENV)), 2);
  t.match(err, /ERR_TCPAO_RENDER_WRITE/);

  out = '';
  t.equal(renderConfigMain(['--help'], io({})), 0);
  t.match(out, /^Usage: render-config/);
});

t.test('renderConfigMain: the command line is parsed and reported by the shared CLI framework', async (t) => {
  let out = '';
  let err = '';
  const io = { env: INITIATOR_ENV, stdout: (s: string) => (out += s), stderr: (s: string) => (err += s) };
  const run = (argv: string[]): [number, string[]] => {
    err = '';
    return [renderConfigMain(argv, io), err.split('\n').filter((line) => line !== '')];
  };
  t.same(run(['--role', 'relay', '--template', 'x', '--output', '-']), [2, ['render-config: ERR_TCPAO_USAGE: --role must be initiator or terminator']]);
  t.same(run(['--role', 'initiator', '--output', '-']), [2, ['render-config: ERR_TCPAO_USAGE: --template is required (--template FILE)']]);
  t.same(run(['--role', 'initiator', '--template', 'x', '--output']), [2, ['render-config: ERR_TCPAO_USAGE: --output needs a value (FILE)']]);
  t.same(run(['--role', 'initiator', '--role', 'terminator', '--template', 'x', '--output', '-']), [
    2,
    ['render-config: ERR_TCPAO_USAGE: --role is given more than once'],
  ]);
  t.same(run(['--role', 'initiator', '--template', 'x', '--output', '-', 'extra']), [
    2,
    ['render-config: ERR_TCPAO_USAGE: unexpected argument; render-config takes options only'],
  ]);
  const [status, lines] = run(['--role', 'initiator', '--template', 'x', '--output', '-', `--key=${KEY}`]);
  t.equal(status, 2);
  t.same(lines, ['render-config: ERR_TCPAO_USAGE: unknown option --key; keys are never taken from the command line: set key_source in the config']);
  t.notMatch(err, KEY, 'an unknown argument is never echoed: it may be a key');

  out = '';
  t.equal(renderConfigMain(['--role', 'relay', '-h'], io), 0, 'help wins over the other problems');
  t.match(out, /^Usage: render-config --role initiator\|terminator --template FILE --output FILE\|-\n/);
  t.match(out, /^ +--template FILE +the template to fill \(required\)$/m);
});

t.test('scripts/render-config wrapper: renders, refuses with exit 2, never prints the key', async (t) => {
  const good = spawnSync(RENDER_CONFIG, ['--role', 'terminator', '--template', path.join(TEMPLATE_DIR, 'terminator.toml.tmpl'), '--output', '-'], {
    env: { PATH: process.env.PATH, TCPAO_KEY: KEY, PEER_IP: '10.10.10.1' },
    encoding: 'utf8',
  });
  t.equal(good.status, 0, good.stderr);
  t.equal((TOML.parse(good.stdout) as Doc).ao_policy[0].key_source, 'env:TCPAO_KEY');
  t.notMatch(good.stdout + good.stderr, KEY);

  const bad = spawnSync(RENDER_CONFIG, ['--role', 'terminator', '--template', path.join(TEMPLATE_DIR, 'terminator.toml.tmpl'), '--output', '-'], {
    env: { PATH: process.env.PATH, TCPAO_KEY: KEY, PEER_IP: '10.10.10.1', KEY_ID: 'one' },
    encoding: 'utf8',
  });
  t.equal(bad.status, 2);
  t.equal(bad.stdout, '');
  t.match(bad.stderr, /^render-config: ERR_TCPAO_RENDER_INVALID_VALUE: KEY_ID is not a whole number/);
  t.notMatch(bad.stderr, KEY);
  t.notMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace');
});

t.test('tcpao-proxy render-config: the packaged template by default, coded refusals', async (t) => {
  const bin = path.join(ROOT, 'bin', 'tcpao-proxy');
  const good = spawnSync(process.execPath, [bin, 'render-config', '--role', 'initiator', '--output', '-'], {
    env: { PATH: process.env.PATH, TCPAO_KEY: KEY, REMOTE_AO: '[fd00:10:10::2]:1790' },
    encoding: 'utf8',
  });
  t.equal(good.status, 0, good.stderr);
  const doc = TOML.parse(good.stdout) as Doc;
  t.equal(doc.initiator.remote_ao, '[fd00:10:10::2]:1790');
  t.equal(doc.ao_policy[0].peer_ip, 'fd00:10:10::2', 'PEER_IP derived from the bracketed REMOTE_AO');
  t.notMatch(good.stdout + good.stderr, KEY);

  const missing = spawnSync(process.execPath, [bin, 'render-config', '--role', 'terminator', '--output', '-'], {
    env: { PATH: process.env.PATH, TCPAO_KEY: KEY },
    encoding: 'utf8',
  });
  t.equal(missing.status, 2);
  t.equal(missing.stdout, '');
  t.match(missing.stderr, /^tcpao-proxy: ERR_TCPAO_RENDER_MISSING_VAR: PEER_IP is not set/);
  t.notMatch(missing.stderr, KEY);
});
