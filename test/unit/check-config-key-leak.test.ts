/**
 * The key-leak scan over error output: check-config is run on configs with a
 * key pasted into each string field (and as a TOML key name, a table name and
 * after a key source's scheme), in the shapes `openssl rand` prints. No run may
 * put any 8 consecutive characters of the key, in any encoding, on stdout or
 * stderr. In process for the many cases, then once through the real binary.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import t from 'tap';

import { runCli } from '../../src/cli.js';

const REPO = resolve(__dirname, '..', '..', '..');
const BIN = join(REPO, 'bin', 'tcpao-proxy');
const ENV = { TCPAO_KEY: 'leak-scan-env-key-Rw27' };

/** openssl rand -hex 16, -hex 32, -base64 16 and -base64 32. */
const KEYS = [
  '9f86d081884c7d659a2feaa0c55ad015',
  'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9',
  'q1Zr8Kk3tV+9oYc0Wm2XgA==',
  'n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=',
];

/** Every 8-character window of the key as typed, and of its bytes in hex and base64. */
function needles(key: string): string[] {
  const forms = new Set([key, Buffer.from(key).toString('hex'), Buffer.from(key).toString('base64')]);
  if (/^[0-9a-f]+$/.test(key)) forms.add(Buffer.from(key, 'hex').toString('base64'));
  else forms.add(Buffer.from(key, 'base64').toString('hex'));
  const windows = new Set<string>();
  for (const form of forms) for (let i = 0; i + 8 <= form.length; i++) windows.add(form.slice(i, i + 8));
  return [...windows];
}

const INITIATOR = { listen_plain: '127.0.0.1:5000', remote_ao: '10.0.0.2:1790', source_ip: '10.0.0.1' };
const TERMINATOR = { listen_ao: '0.0.0.0:1790', forward_plain: '127.0.0.1:11019' };
const GLOBAL = { log_format: 'json', log_level: 'info', metrics_listen: '127.0.0.1:9100', pid_file: 'sidecar.pid' };
const POLICY = { name: 'p', peer_ip: '10.0.0.2', keyid: 1, mac_alg: 'hmac-sha256', key_source: 'env:TCPAO_KEY' };
const KEY_TABLE = { send_id: 1, recv_id: 1, mac_alg: 'hmac-sha256', key_source: 'env:TCPAO_KEY', role: 'preferred' };

type Fields = Readonly<Record<string, string | number>>;

function table(header: string, fields: Fields): string {
  return `${header}\n${Object.entries(fields)
    .map(([key, value]) => `${/^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key)} = ${JSON.stringify(value)}`)
    .join('\n')}\n`;
}

interface Sections {
  readonly global?: Fields;
  readonly side?: 'initiator' | 'terminator';
  readonly sideFields?: Fields;
  readonly policy?: Fields;
  readonly keyTable?: Fields;
  readonly extra?: string;
}

function config(sections: Sections): string {
  const side = sections.side ?? 'initiator';
  const sideFields = sections.sideFields ?? (side === 'initiator' ? INITIATOR : TERMINATOR);
  const policyText =
    sections.keyTable === undefined
      ? table('[[ao_policy]]', sections.policy ?? POLICY)
      : `${table('[[ao_policy]]', { name: 'p', peer_ip: '10.0.0.2', ...(sections.policy ?? {}) })}${table('[[ao_policy.key]]', sections.keyTable)}`;
  return [table('[global]', sections.global ?? GLOBAL), table(`[${side}]`, sideFields), policyText, sections.extra ?? ''].join('\n');
}

/** Each way a key can be pasted into the config. */
function pastings(key: string): { readonly where: string; readonly text: string }[] {
  const cases: { where: string; text: string }[] = [];
  for (const field of Object.keys(GLOBAL)) cases.push({ where: `global.${field}`, text: config({ global: { ...GLOBAL, [field]: key } }) });
  for (const field of Object.keys(INITIATOR)) cases.push({ where: `initiator.${field}`, text: config({ sideFields: { ...INITIATOR, [field]: key } }) });
  for (const field of Object.keys(TERMINATOR)) {
    cases.push({ where: `terminator.${field}`, text: config({ side: 'terminator', sideFields: { ...TERMINATOR, [field]: key } }) });
  }
  for (const field of ['name', 'peer_ip', 'mac_alg', 'key_source', 'keyid']) {
    cases.push({ where: `ao_policy.${field}`, text: config({ policy: { ...POLICY, [field]: key } }) });
  }
  for (const field of ['mac_alg', 'key_source', 'role', 'send_id']) {
    cases.push({ where: `ao_policy.key.${field}`, text: config({ keyTable: { ...KEY_TABLE, [field]: key } }) });
  }
  for (const scheme of ['env', 'file', 'env-hex', 'file-base64']) {
    cases.push({ where: `key_source ${scheme}:KEY`, text: config({ policy: { ...POLICY, key_source: `${scheme}:${key}` } }) });
  }
  // Before the first table, so that it stays at the top level.
  cases.push({ where: 'a key name at the top level', text: `${JSON.stringify(key)} = 1\n${config({})}` });
  cases.push({ where: 'a key name in [global]', text: config({ global: { ...GLOBAL, [key]: 1 } }) });
  cases.push({ where: 'a key name in [initiator]', text: config({ sideFields: { ...INITIATOR, [key]: 'x' } }) });
  cases.push({ where: 'a key name in [[ao_policy]]', text: config({ policy: { ...POLICY, [key]: 'x' } }) });
  cases.push({ where: 'a key name in [[ao_policy.key]]', text: config({ keyTable: { ...KEY_TABLE, [key]: 1 } }) });
  cases.push({ where: 'a table name', text: config({ extra: `[${JSON.stringify(key)}]\nx = 1\n` }) });
  cases.push({ where: 'an unknown field holding it', text: config({ policy: { ...POLICY, psk: key } }) });
  cases.push({ where: 'unquoted, a syntax error', text: config({}).replace('"hmac-sha256"', key) });
  cases.push({ where: 'inside a bad escape', text: config({}).replace('"hmac-sha256"', `"\\${key}"`) });
  return cases;
}

t.test('check-config never prints a key pasted into the config, on stdout or stderr', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-leak-scan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let runs = 0;
  let rejected = 0;
  for (const key of KEYS) {
    const scan = needles(key);
    for (const [index, pasting] of pastings(key).entries()) {
      const path = join(dir, `c${index}.toml`);
      writeFileSync(path, pasting.text);
      const out: string[] = [];
      const status = await runCli(['check-config', '--config', path], { stdout: (s) => void out.push(s), stderr: (s) => void out.push(s), env: ENV }, {
        runSidecar: async () => {},
      });
      runs += 1;
      if (status === 2) rejected += 1;
      const output = out.join('');
      const leaked = scan.filter((needle) => output.includes(needle));
      t.same(leaked, [], `${pasting.where} (${key.length} characters): no key bytes in ${JSON.stringify(output.slice(0, 160))}`);
    }
  }
  t.ok(rejected > runs / 2, `most pastings are rejected (${rejected} of ${runs}), so error output is what was scanned`);
});

t.test('the real binary: a key pasted into every field at once never reaches stdout or stderr', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-leak-scan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = KEYS[0] as string;
  const everywhere = config({
    global: { log_format: key, log_level: key, metrics_listen: key, pid_file: 'sidecar.pid', [key]: 1 },
    sideFields: { listen_plain: key, remote_ao: key, source_ip: key, [key]: 1 },
    policy: { name: key, peer_ip: key },
    keyTable: { send_id: 1, recv_id: 1, mac_alg: key, key_source: key, role: key, [key]: 1 },
  });
  const path = join(dir, 'everywhere.toml');
  writeFileSync(path, everywhere);
  const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    execFile(process.execPath, [BIN, 'check-config', '--config', path], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...ENV }, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
  t.equal(run.status, 2);
  t.ok(run.stderr.split('\n').filter((line) => line !== '').length >= 10, 'every field is reported');
  t.same(needles(key).filter((needle) => (run.stdout + run.stderr).includes(needle)), [], 'no key bytes');
});
