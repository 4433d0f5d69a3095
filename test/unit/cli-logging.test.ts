/**
 * The logger: JSON line shape, module children, levels, redaction of every
 * key-shaped path, and the human one-line format.
 */
import t from 'tap';

import { TcpAoError } from '../../src/errors.js';
import { createLogger, formatHumanLine, moduleLogger, REDACT_PATHS } from '../../src/log.js';

function capture(options: Parameters<typeof createLogger>[0]) {
  const lines: string[] = [];
  const logger = createLogger(options, { write: (line: string) => void lines.push(line) });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

t.test('JSON lines: level label, ISO time, pid, msg, module', async (t) => {
  const { logger, lines, records } = capture({});
  moduleLogger(logger, 'initiator').info({ event: 'accepted', bytes: 12 }, 'connection accepted');
  t.equal(lines.length, 1);
  t.ok(lines[0]?.endsWith('\n'), 'one line each');
  const [record] = records();
  t.match(record, { level: 'info', pid: process.pid, module: 'initiator', event: 'accepted', bytes: 12, msg: 'connection accepted' });
  t.match(record?.['time'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.notOk(record && 'hostname' in record, 'no hostname: containers make it noise');
});

t.test('levels: info by default, debug when asked, silent silences', async (t) => {
  const info = capture({});
  info.logger.debug('hidden');
  info.logger.info('shown');
  t.same(info.records().map((r) => r['msg']), ['shown']);
  const debug = capture({ level: 'debug' });
  debug.logger.debug('shown');
  debug.logger.trace('hidden');
  t.same(debug.records().map((r) => r['level']), ['debug']);
  const silent = capture({ level: 'silent' });
  silent.logger.fatal('nothing');
  t.same(silent.lines, []);
});

t.test('every redact path censors the value', async (t) => {
  const secret = 'redact-me-Ty5Bn1';
  const build = (path: string): Record<string, unknown> => {
    // Turn "a.*.keys[*].key" into an object with the secret at that place.
    const parts = path.replace(/\[\*\]/g, '.0').split('.');
    const root: Record<string, unknown> = {};
    let node: Record<string, unknown> | unknown[] = root;
    parts.forEach((part, index) => {
      const name = part === '*' ? 'anything' : part;
      const last = index === parts.length - 1;
      const nextIsIndex = parts[index + 1] === '0';
      const value: unknown = last ? secret : nextIsIndex ? [] : {};
      if (Array.isArray(node)) node[0] = value;
      else node[name] = value;
      if (!last) node = value as Record<string, unknown> | unknown[];
    });
    return root;
  };
  for (const path of REDACT_PATHS) {
    const { logger, lines } = capture({});
    logger.info(build(path), 'probe');
    t.notOk(lines.join('').includes(secret), `${path} is redacted`);
    t.match(lines.join(''), '[REDACTED]', `${path} shows the censor`);
  }
});

t.test('the AoKeySpec shapes the proxy builds are redacted', async (t) => {
  const { logger, lines } = capture({});
  const key = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x42]);
  logger.info({ spec: { peer: '10.0.0.2', key }, policies: [{ keys: [{ sendId: 1, key }] }], plan: { policies: [{ keys: [{ key }] }] } }, 'x');
  const text = lines.join('');
  t.notMatch(text, /"0":222|deadbeef|3q2\+7w/i, 'no bytes of the key in any rendering');
  t.equal((text.match(/\[REDACTED\]/g) ?? []).length, 3);
});

t.test('human format: one compact line per record', async (t) => {
  const { logger, lines } = capture({ format: 'human', level: 'debug' });
  moduleLogger(logger, 'terminator').warn({ event: 'refused', peer: '10.0.0.9:4000', reason: 'no key', counters: { bad: 2 } }, 'connection refused');
  const line = lines[0] ?? '';
  t.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN  \[terminator\] connection refused event=refused peer=10\.0\.0\.9:4000 reason="no key" counters=\{"bad":2\}\n$/);
  t.equal(lines.length, 1);
  t.throws(() => JSON.parse(line), SyntaxError, 'not JSON');
});

t.test('human format: errors show code and message; the stack only when logged', async (t) => {
  const { logger, lines } = capture({ format: 'human', level: 'debug' });
  const err = new TcpAoError('ERR_TCPAO_SYSCALL', 'setsockopt(TCP_AO_ADD_KEY): Invalid argument', { errno: 22 });
  logger.error({ code: err.code }, 'add key failed');
  logger.debug({ err }, 'detail');
  t.match(lines[0], /ERROR \[?.*add key failed code=ERR_TCPAO_SYSCALL\n$/);
  t.match(lines[1], /DEBUG detail err\.code=ERR_TCPAO_SYSCALL err="setsockopt\(TCP_AO_ADD_KEY\): Invalid argument"\n {4}\| TcpAoError/);
  t.match(lines[1], /\n {4}\| {5}at /, 'stack lines are indented under the record');
});

t.test('formatHumanLine passes through text that is not JSON', async (t) => {
  t.equal(formatHumanLine('plain text'), 'plain text\n');
  t.equal(formatHumanLine('plain text\n'), 'plain text\n');
});

t.test('the human format redacts like the JSON one', async (t) => {
  const { logger, lines } = capture({ format: 'human' });
  logger.info({ key: 'human-secret-Lp4', policy: { key: 'human-secret-Lp4' } }, 'x');
  t.notOk(lines.join('').includes('human-secret-Lp4'));
  t.match(lines.join(''), 'key=[REDACTED] policy={"key":"[REDACTED]"}');
});
