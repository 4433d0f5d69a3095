/**
 * SecretKey redaction and the key sources: env/file, raw/hex/base64, the
 * trailing newline rule, length limits, and messages that never carry keys.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format, inspect } from 'node:util';

import t from 'tap';

import {
  formatKeySource,
  KeySourceError,
  MAX_KEY_BYTES,
  parseKeySource,
  resolveKey,
  SecretKey,
  type KeySourceSpec,
} from '../../src/config/keys.js';
import { keyBytes } from '../helpers/key-bytes.js';
import { loadConfigText } from '../../src/config/load.js';
import { describePolicy } from '../../src/policy/select.js';
import { toKeySpec, wireKeysOf } from '../../src/policy/keyset.js';
import { createLogger } from '../../src/log.js';

const KEY_TEXT = 'redaction-probe-key-Vn7Ws2';
const KEY_BYTES = Buffer.from(KEY_TEXT);

function encodings(bytes: Buffer): string[] {
  return [bytes.toString('latin1'), bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url')];
}

t.test('SecretKey never prints its bytes', async (t) => {
  const key = SecretKey.fromBytes(KEY_BYTES);
  const renderings = {
    'JSON.stringify': JSON.stringify({ key, nested: { key } }),
    'util.inspect': inspect({ key }, { depth: 10, showHidden: true }),
    'util.format %o': format('%o', key),
    'util.format %s': format('%s', key),
    'template string': `${key}`,
    'String()': String(key),
    'string concatenation': 'k=' + key,
    'Object.entries': JSON.stringify(Object.entries(key)),
    structuredClone: JSON.stringify(structuredClone(key)),
  };
  for (const [how, text] of Object.entries(renderings)) {
    for (const encoded of encodings(KEY_BYTES)) t.notOk(text.includes(encoded), `${how} does not contain the key`);
  }
  t.equal(renderings['JSON.stringify'], '{"key":"[REDACTED]","nested":{"key":"[REDACTED]"}}');
  t.equal(renderings['template string'], '[REDACTED]');
  t.equal(renderings['util.inspect'], "{ key: [REDACTED] }");
  t.equal(key.byteLength, KEY_BYTES.length);
});

t.test('SecretKey in pino output is redacted, under any field name', async (t) => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  const key = SecretKey.fromBytes(KEY_BYTES);
  logger.info({ key }, 'by redact path');
  logger.info({ policy: { material: key, innocent: key } }, 'by nested path and by toJSON');
  logger.info({ list: [key, key] }, 'in an array');
  logger.child({ module: 'test', key }).warn('as a child binding');
  logger.info(`in the message ${key}`);
  t.equal(lines.length, 5);
  for (const line of lines) {
    JSON.parse(line);
    for (const encoded of encodings(KEY_BYTES)) t.notOk(line.includes(encoded), 'no key bytes');
  }
  const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.equal(records[1] && (records[1]['policy'] as Record<string, unknown>)['innocent'], '[REDACTED]');
  t.same(records[2]?.['list'], ['[REDACTED]', '[REDACTED]']);
  t.equal(records[4]?.['msg'], 'in the message [REDACTED]');
});

t.test('reveal() hands out a copy, and wipe() zeroes the key', async (t) => {
  const source = Buffer.from(KEY_BYTES);
  const key = SecretKey.fromBytes(source);
  source.fill(0);
  const first = key.reveal();
  t.same(Buffer.from(first), KEY_BYTES, 'copied at construction: later changes to the source do not matter');
  first.fill(0);
  t.same(Buffer.from(key.reveal()), KEY_BYTES, 'reveal returns a copy');
  key.wipe();
  t.same(Buffer.from(key.reveal()), Buffer.alloc(KEY_BYTES.length));
});

t.test('parseKeySource accepts the six forms', async (t) => {
  const forms: Record<string, KeySourceSpec> = {
    'env:TCPAO_KEY': { kind: 'env', encoding: 'raw', ref: 'TCPAO_KEY' },
    'file:/run/secrets/tcpao': { kind: 'file', encoding: 'raw', ref: '/run/secrets/tcpao' },
    'env-hex:K_HEX': { kind: 'env', encoding: 'hex', ref: 'K_HEX' },
    'file-hex:keys/k.hex': { kind: 'file', encoding: 'hex', ref: 'keys/k.hex' },
    'env-base64:_K64': { kind: 'env', encoding: 'base64', ref: '_K64' },
    'file-base64:k:with:colons': { kind: 'file', encoding: 'base64', ref: 'k:with:colons' },
  };
  for (const [text, spec] of Object.entries(forms)) {
    t.same(parseKeySource(text), { ok: true, value: spec }, text);
    t.equal(formatKeySource(spec), text, `${text} round-trips`);
  }
});

t.test('parseKeySource refuses anything else without repeating it', async (t) => {
  for (const text of ['the-key-itself', 'vault:secret/x', 'ENV:X', 'env:', 'env:1X', 'env:A-B', 'file:', 'constructor:x', '__proto__:x', ':x']) {
    const result = parseKeySource(text);
    t.equal(result.ok, false, JSON.stringify(text));
    if (!result.ok) t.notOk(result.message.includes(text), 'the message does not echo the value');
  }
});

t.test('env sources: the UTF-8 bytes of the value, exactly', async (t) => {
  const env = { RAW: ' spaced value\n', UTF8: 'é'.repeat(40), EMPTY: '', HEX: '00ff10', B64: 'AP8Q', B64URL: '_-8', LONG: 'x'.repeat(81) };
  const bytes = (spec: string) => Buffer.from(resolveEnv(spec, env).reveal());
  t.same(bytes('env:RAW'), Buffer.from(' spaced value\n'), 'no trimming of env values');
  t.equal(bytes('env:UTF8').length, 80, '40 two-byte characters are 80 bytes: allowed');
  t.same(bytes('env-hex:HEX'), Buffer.from([0x00, 0xff, 0x10]));
  t.same(bytes('env-base64:B64'), Buffer.from([0x00, 0xff, 0x10]));
  t.same(bytes('env-base64:B64URL'), Buffer.from([0xff, 0xef]), 'base64url is accepted');
  t.throws(() => resolveEnv('env:MISSING', env), new KeySourceError('environment variable MISSING is not set; export it before starting (keys never go on the command line)'));
  t.throws(() => resolveEnv('env:EMPTY', env), new KeySourceError('environment variable EMPTY is set but empty'));
  t.throws(() => resolveEnv('env:LONG', env), new KeySourceError('environment variable LONG holds 81 bytes; a TCP-AO key is 1 to 80 bytes'));
  t.throws(() => resolveEnv('env:UTF8', { UTF8: 'é'.repeat(41) }), { message: /holds 82 bytes/ }, 'the limit counts bytes, not characters');
  t.throws(() => resolveEnv('env-hex:RAW', env), { message: /is not valid hex/ });
  t.throws(() => resolveEnv('env-hex:ODD', { ODD: 'abc' }), { message: /is not valid hex/ });
  t.throws(() => resolveEnv('env-base64:BAD', { BAD: 'ab$d' }), { message: /is not valid base64/ });
  t.throws(() => resolveEnv('env-base64:STRAY', { STRAY: 'AP9' }), { message: /stray bits/ }, 'non-canonical base64 is refused');
  t.throws(() => resolveEnv('env-hex:HLONG', { HLONG: 'ab'.repeat(81) }), { message: /holds 81 bytes once decoded from hex/ });
});

t.test('a key in the process environment is moved out of it, never read as a string, and found again by a reload', async (t) => {
  const name = 'TCPAO_UNIT_TAKEN_KEY';
  process.env[name] = Buffer.from(KEY_TEXT).toString('hex');
  t.teardown(() => {
    delete process.env[name];
  });
  const first = resolveEnv(`env-hex:${name}`, process.env);
  t.same(Buffer.from(first.reveal()), KEY_BYTES, 'the key decodes from the environment');
  t.equal(process.env[name], undefined, 'the variable is gone from the environment afterwards');
  const again = resolveEnv(`env-hex:${name}`, process.env);
  t.same(Buffer.from(again.reveal()), KEY_BYTES, 'a reload reads the same key from the one stored copy');
  t.not(again, first, 'as a SecretKey of its own, so wiping the old config leaves it intact');
  first.wipe();
  t.same(Buffer.from(again.reveal()), KEY_BYTES);
  process.env[name] = Buffer.from('a-key-set-again-inside').toString('hex');
  t.same(Buffer.from(resolveEnv(`env-hex:${name}`, process.env).reveal()), Buffer.from('a-key-set-again-inside'), 'a value set again is taken afresh');
});

t.test('hex and base64 keys decode from bytes exactly as before', async (t) => {
  const all = Buffer.from(Array.from({ length: 80 }, (_, i) => (i * 37 + 11) & 0xff));
  for (const length of [1, 2, 3, 4, 5, 16, 20, 79, 80]) {
    const bytes = all.subarray(0, length);
    const env = {
      HEX: bytes.toString('hex'),
      UPPER: bytes.toString('hex').toUpperCase(),
      B64: bytes.toString('base64'),
      B64URL: bytes.toString('base64url'),
    };
    for (const spec of ['env-hex:HEX', 'env-hex:UPPER', 'env-base64:B64', 'env-base64:B64URL']) {
      t.same(Buffer.from(resolveEnv(spec, env).reveal()), bytes, `${spec}, ${length} bytes`);
    }
  }
  t.throws(() => resolveEnv('env-base64:PAD3', { PAD3: 'AP8Q===' }), { message: /is not valid base64/ }, 'three = are too many');
  t.throws(() => resolveEnv('env-base64:ONLYPAD', { ONLYPAD: '==' }), { message: /is not valid base64/ });
  t.throws(() => resolveEnv('env-base64:LEN1', { LEN1: 'AAAAA' }), { message: /is not valid base64/ }, 'a length of 4n+1 is impossible');
  t.throws(() => resolveEnv('env-hex:GAP', { GAP: '00 ff' }), { message: /is not valid hex/ }, 'no inner spaces');
});

function resolveEnv(text: string, env: NodeJS.ProcessEnv): SecretKey {
  const parsed = parseKeySource(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return resolveKey(parsed.value, { env, baseDir: '/nonexistent' });
}

t.test('file sources: exactly one trailing newline is stripped from raw files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files: Record<string, string | Buffer> = {
    'plain.key': 'abc',
    'newline.key': 'abc\n',
    'two.key': 'abc\n\n',
    'crlf.key': 'abc\r\n',
    'space.key': 'abc \n',
    'binary.key': Buffer.from([0, 1, 2, 0x0a, 0x0a]),
    'empty.key': '',
    'newline-only.key': '\n',
    'max.key': `${'k'.repeat(MAX_KEY_BYTES)}\n`,
    'over.key': 'k'.repeat(MAX_KEY_BYTES + 1),
    'huge.key': 'k'.repeat(5_000),
    'k.hex': '  0A0b0C\n\n',
    'k.b64': 'AAEC\n',
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  mkdirSync(join(dir, 'a-directory'));
  const read = (text: string) => {
    const parsed = parseKeySource(text);
    if (!parsed.ok) throw new Error(parsed.message);
    return Buffer.from(resolveKey(parsed.value, { env: {}, baseDir: dir }).reveal());
  };
  t.same(read('file:plain.key'), Buffer.from('abc'));
  t.same(read('file:newline.key'), Buffer.from('abc'));
  t.same(read('file:two.key'), Buffer.from('abc\n'), 'only one newline');
  t.same(read('file:space.key'), Buffer.from('abc '));
  t.same(read('file:binary.key'), Buffer.from([0, 1, 2, 0x0a]));
  t.same(read(`file:${join(dir, 'plain.key')}`), Buffer.from('abc'), 'absolute paths');
  t.equal(read('file:max.key').length, MAX_KEY_BYTES);
  t.same(read('file-hex:k.hex'), Buffer.from([0x0a, 0x0b, 0x0c]), 'encoded files are trimmed of surrounding whitespace');
  t.same(read('file-base64:k.b64'), Buffer.from([0, 1, 2]));
  t.throws(() => read('file:empty.key'), { message: `key file ${join(dir, 'empty.key')} is empty` });
  t.throws(() => read('file:newline-only.key'), { message: `key file ${join(dir, 'newline-only.key')} is empty` });
  t.throws(() => read('file:over.key'), { message: `key file ${join(dir, 'over.key')} holds 81 bytes; a TCP-AO key is 1 to 80 bytes` });
  t.throws(() => read('file:huge.key'), { message: `key file ${join(dir, 'huge.key')} is 5000 bytes, too large to hold a key of at most 80 bytes` });
  t.throws(() => read('file:missing.key'), { message: `key file ${join(dir, 'missing.key')} cannot be opened: no such file (ENOENT)` });
  t.throws(() => read('file:a-directory'), { message: `key file ${join(dir, 'a-directory')} is a directory, not a file` });
  t.throws(() => read('file:plain.key/below'), { message: /ENOTDIR/ });
  t.throws(() => read('file:/dev/null'), { message: /^key file \/dev\/null is a character device, not a regular file; / });
});

t.test('a CRLF key file is refused, not read as a key ending in \\r', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'crlf.key'), 'abc\r\n');
  writeFileSync(join(dir, 'crlf.hex'), '0a0b0c\r\n');
  writeFileSync(join(dir, 'crlf.b64'), 'AAEC\r\n');
  const spec = (text: string): KeySourceSpec => {
    const parsed = parseKeySource(text);
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.value;
  };
  t.throws(() => resolveKey(spec('file:crlf.key'), { env: {}, baseDir: dir }), {
    constructor: KeySourceError,
    message: `key file ${join(dir, 'crlf.key')} ends with a Windows line ending (CRLF): only the \\n is dropped, so the \\r would become part of the key and differ from the peer's; convert it with \`dos2unix FILE\`, or use file-hex: or file-base64:`,
  });
  t.same(Buffer.from(resolveKey(spec('file-hex:crlf.hex'), { env: {}, baseDir: dir }).reveal()), Buffer.from([0x0a, 0x0b, 0x0c]), 'encoded files ignore line endings');
  t.same(Buffer.from(resolveKey(spec('file-base64:crlf.b64'), { env: {}, baseDir: dir }).reveal()), Buffer.from([0, 1, 2]));
});

t.test('a key file starting with a UTF-8 BOM is refused in every encoding', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  const files = { 'bom.key': 'abc', 'bom.hex': '0a0b0c', 'bom.b64': 'AAEC' };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), Buffer.concat([bom, Buffer.from(content)]));
  for (const [source, name] of [['file', 'bom.key'], ['file-hex', 'bom.hex'], ['file-base64', 'bom.b64']] as const) {
    const parsed = parseKeySource(`${source}:${name}`);
    if (!parsed.ok) throw new Error(parsed.message);
    t.throws(() => resolveKey(parsed.value, { env: {}, baseDir: dir }), {
      constructor: KeySourceError,
      message: new RegExp(`^key file ${join(dir, name).replace(/[.]/g, '\\.')} starts with a UTF-8 byte order mark \\(EF BB BF\\)`),
    }, source);
  }
});

t.test('a key file that is a FIFO or a device is refused at once, never read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'key.fifo');
  execFileSync('mkfifo', [fifo]);
  const cases = [
    [fifo, 'a FIFO'],
    ['/dev/zero', 'a character device'],
    ['/dev/urandom', 'a character device'],
  ] as const;
  for (const [path, kind] of cases) {
    const parsed = parseKeySource(`file:${path}`);
    if (!parsed.ok) throw new Error(parsed.message);
    // Without O_NONBLOCK opening the FIFO waits for a writer, and this test would never end.
    t.throws(() => resolveKey(parsed.value, { env: {}, baseDir: dir }), {
      constructor: KeySourceError,
      message: `key file ${path} is ${kind}, not a regular file; keys are read only from regular files (a FIFO or device could block or never end)`,
    }, path);
  }
});

t.test('a policy maps onto the addon contract (wireKeysOf, then toKeySpec)', async (t) => {
  const { config } = loadConfigText(
    '[initiator]\nlisten_plain = "127.0.0.1:5000"\nremote_ao = "[2001:db8::2]:1790"\n\n' +
      '[[ao_policy]]\nname = "v6"\npeer_ip = "2001:db8::/64"\nkeyid = 3\nrecv_id = 4\nmac_alg = "aes-128-cmac"\n' +
      'key_source = "env:K"\nmaclen = 16\nexclude_tcp_options = true\nvrf_ifindex = 9\n',
    { env: { K: KEY_TEXT }, source: 'inline', baseDir: '/' },
  );
  const policy = config.activePolicies[0];
  if (policy === undefined) throw new Error('no active policy');
  const [wireKey] = wireKeysOf(policy);
  if (wireKey === undefined) throw new Error('no wire key');
  const spec = toKeySpec(wireKey, { setCurrent: true, setRnext: true });
  t.same({ ...spec, key: keyBytes(spec.key) }, {
    peer: '2001:db8::',
    prefixLength: 64,
    sendId: 3,
    recvId: 4,
    algorithm: 'aes-128-cmac',
    key: KEY_BYTES,
    maclen: 16,
    ifindex: 9,
    excludeOptions: true,
    setCurrent: true,
    setRnext: true,
  });
  t.notOk('setCurrent' in toKeySpec(wireKey), 'flags are left out unless given');
  const described = JSON.stringify(describePolicy(policy));
  t.equal(
    described,
    '{"name":"v6","peer":"2001:db8::/64","peer_port":0,"send_id":3,"recv_id":4,"mac_alg":"aes-128-cmac","maclen":16,' +
      '"exclude_tcp_options":true,"vrf_ifindex":9,"key_length":26}',
  );
  for (const encoded of encodings(KEY_BYTES)) t.notOk(JSON.stringify(config).includes(encoded), 'the whole config serialises without the key');
  t.notOk(inspect(config, { depth: 20 }).includes(KEY_TEXT), 'and inspects without it');
});
