/**
 * Bad input given to the real binary: each case runs `check-config` (one coded
 * line per problem on stderr, nothing on stdout, exit 2, no stack) and
 * `doctor --config --json` (the failing check names the same problem on one
 * line; doctor's own contract is exit 1 when a check fails). A FIFO or device
 * that used to hang either command must now answer; the child's timeout turns
 * a hang into a failure.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import t from 'tap';

const REPO = resolve(__dirname, '..', '..', '..');
const BIN = join(REPO, 'bin', 'tcpao-proxy');
const KEY = 'bad-input-env-key-Tq83';
const PASTED_KEY = '9f86d081884c7d659a2feaa0c55ad015';

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runBin(args: readonly string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TCPAO_KEY: KEY }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        done({ status, stdout, stderr });
      },
    );
  });
}

function policy(name: string, peer: string, keySource: string, macAlg = 'hmac-sha256'): string {
  return `[[ao_policy]]\nname = "${name}"\npeer_ip = "${peer}"\nkeyid = 1\nmac_alg = "${macAlg}"\nkey_source = "${keySource}"\n`;
}

const TERMINATOR = '[terminator]\nlisten_ao = "127.0.0.1:1790"\nforward_plain = "127.0.0.1:11019"\n';

interface Case {
  readonly name: string;
  /** The config path, made in `dir`. */
  readonly config: (dir: string) => string;
  /** The one stderr line check-config prints, as a pattern. */
  readonly line: RegExp;
  /** The doctor check that fails, and a pattern for its finding. */
  readonly check: string;
  readonly finding: RegExp;
}

const dir = mkdtempSync(join(tmpdir(), 'tcpao-bad-input-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
execFileSync('mkfifo', [join(dir, 'config.fifo'), join(dir, 'key.fifo')]);
writeFileSync(join(dir, 'crlf.key'), 'shared-key\r\n');
writeFileSync(join(dir, 'bom.key'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('shared-key')]));

function withPolicy(name: string, body: string): (dir: string) => string {
  return (where) => {
    const path = join(where, `${name}.toml`);
    writeFileSync(path, `${TERMINATOR}\n${body}`);
    return path;
  };
}

const CASES: readonly Case[] = [
  {
    name: 'config path is a FIFO',
    config: (where) => join(where, 'config.fifo'),
    line: /^tcpao-proxy: ERR_TCPAO_CONFIG_READ: \S+config\.fifo: is a FIFO, not a regular file; give the config file itself/,
    check: 'config.valid',
    finding: /config\.fifo: is a FIFO, not a regular file/,
  },
  {
    name: 'config path is /dev/zero',
    config: () => '/dev/zero',
    line: /^tcpao-proxy: ERR_TCPAO_CONFIG_READ: \/dev\/zero: is a character device, not a regular file/,
    check: 'config.valid',
    finding: /^\/dev\/zero: is a character device/,
  },
  {
    name: 'config starts with a BOM',
    config: (where) => {
      const path = join(where, 'bom.toml');
      writeFileSync(path, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${TERMINATOR}\n${policy('p', '127.0.0.1', 'env:TCPAO_KEY')}`)]));
      return path;
    },
    line: /^tcpao-proxy: ERR_TCPAO_CONFIG_SYNTAX: \S+bom\.toml: starts with a UTF-8 byte order mark/,
    check: 'config.valid',
    finding: /bom\.toml: starts with a UTF-8 byte order mark/,
  },
  {
    name: 'key file is a FIFO',
    config: withPolicy('fifo-key', policy('p', '127.0.0.1', 'file:key.fifo')),
    line: /^tcpao-proxy: ERR_TCPAO_KEY_SOURCE: ao_policy\[0\]\.key_source: key file \S+key\.fifo is a FIFO, not a regular file/,
    check: 'key.p',
    finding: /key\.fifo is a FIFO, not a regular file/,
  },
  {
    name: 'key file is /dev/urandom',
    config: withPolicy('device-key', policy('p', '127.0.0.1', 'file:/dev/urandom')),
    line: /^tcpao-proxy: ERR_TCPAO_KEY_SOURCE: ao_policy\[0\]\.key_source: key file \/dev\/urandom is a character device/,
    check: 'key.p',
    finding: /\/dev\/urandom is a character device/,
  },
  {
    name: 'key file has CRLF',
    config: withPolicy('crlf-key', policy('p', '127.0.0.1', 'file:crlf.key')),
    line: /^tcpao-proxy: ERR_TCPAO_KEY_SOURCE: ao_policy\[0\]\.key_source: key file \S+crlf\.key ends with a Windows line ending \(CRLF\)/,
    check: 'key.p',
    finding: /crlf\.key ends with a Windows line ending/,
  },
  {
    name: 'key file has a BOM',
    config: withPolicy('bom-key', policy('p', '127.0.0.1', 'file:bom.key')),
    line: /^tcpao-proxy: ERR_TCPAO_KEY_SOURCE: ao_policy\[0\]\.key_source: key file \S+bom\.key starts with a UTF-8 byte order mark/,
    check: 'key.p',
    finding: /bom\.key starts with a UTF-8 byte order mark/,
  },
  {
    name: 'a key pasted into mac_alg',
    config: withPolicy('pasted-alg', policy('p', '127.0.0.1', 'env:TCPAO_KEY', PASTED_KEY)),
    line: /^tcpao-proxy: ERR_TCPAO_CONFIG_INVALID: ao_policy\[0\]\.mac_alg: not a known algorithm \(32 characters\); use /,
    check: 'config.valid',
    finding: /^ao_policy\[0\]\.mac_alg: not a known algorithm \(32 characters\)/,
  },
  {
    name: '300 policies',
    config: withPolicy(
      'too-many-keys',
      Array.from({ length: 300 }, (_, i) => policy(`peer-${i}`, `10.0.${i >> 8}.${i & 255}`, 'env:TCPAO_KEY')).join('\n'),
    ),
    line: /^tcpao-proxy: ERR_TCPAO_CONFIG_INVALID: ao_policy: the AO listener would hold 300 keys .* more than the 256 keys a socket takes/,
    check: 'config.valid',
    finding: /^ao_policy: the AO listener would hold 300 keys/,
  },
];

for (const entry of CASES) {
  t.test(entry.name, async (t) => {
    const config = entry.config(dir);
    const check = await runBin(['check-config', '--config', config]);
    t.equal(check.status, 2, 'check-config exits 2');
    t.equal(check.stdout, '', 'nothing on stdout');
    const lines = check.stderr.split('\n').filter((line) => line !== '');
    t.equal(lines.length, 1, `one line: ${check.stderr}`);
    t.match(lines[0], entry.line, 'the coded line says what is wrong');
    t.notMatch(check.stderr, /^\s+at /m, 'no stack trace');

    const doctor = await runBin(['doctor', '--config', config, '--json']);
    t.equal(doctor.status, 1, 'doctor answers, exit 1: a check failed');
    t.equal(doctor.stderr, '', 'doctor prints nothing on stderr');
    const report = JSON.parse(doctor.stdout) as { checks: { id: string; status: string; finding: string }[] };
    const failed = report.checks.find((candidate) => candidate.id === entry.check);
    t.equal(failed?.status, 'fail', `${entry.check} fails`);
    t.match(failed?.finding, entry.finding);
    t.notMatch(failed?.finding ?? '', /\n/, 'its finding is one line');
    t.notOk(check.stderr.includes(PASTED_KEY) || doctor.stdout.includes(PASTED_KEY), 'a pasted key is never repeated');
  });
}
