/**
 * The pino root logger. JSON lines to stdout by default; "human" is a compact
 * one-line format produced by a synchronous formatter in this process (pino's
 * transports would start a worker thread for it).
 *
 * Key material cannot reach a log by construction: keys only exist inside
 * SecretKey, which serialises as "[REDACTED]". The redact paths below are a
 * second line of defence for anything key-shaped that gets logged by mistake.
 */
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';

import type { LogFormat, LogLevel } from './config/schema.js';

export type Logger = PinoLogger;
export type { LogFormat, LogLevel };

export const REDACT_CENSOR = '[REDACTED]';

export const REDACT_PATHS: readonly string[] = [
  'key',
  '*.key',
  '*.*.key',
  'keys[*].key',
  '*.keys[*].key',
  '*.*.keys[*].key',
  'policies[*].keys[*].key',
  '*.policies[*].keys[*].key',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'keyBytes',
  '*.keyBytes',
  'key_bytes',
  '*.key_bytes',
  'material',
  '*.material',
];

export interface LoggerOptions {
  readonly format?: LogFormat;
  readonly level?: LogLevel;
}

/**
 * Creates the root logger. `destination` receives complete lines (JSON, or
 * human text when format is "human"); by default it is stdout, written
 * synchronously so that nothing is lost when the process exits.
 */
export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const sink = destination ?? pino.destination({ dest: 1, sync: true });
  const stream = options.format === 'human' ? humanStream(sink) : sink;
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: REDACT_CENSOR },
    },
    stream,
  );
}

/** The logger for one module: every line carries `module`. */
export function moduleLogger(parent: Logger, module: string): Logger {
  return parent.child({ module });
}

function humanStream(sink: DestinationStream): DestinationStream {
  return {
    write(line: string): void {
      sink.write(formatHumanLine(line));
    },
  };
}

const OMITTED_FIELDS = new Set(['level', 'time', 'pid', 'module', 'msg', 'err']);

/**
 * One JSON log line as "TIME LEVEL [module] msg key=value ...". An error's
 * stack follows on indented lines: it only reaches the log at debug level.
 */
export function formatHumanLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  const time = typeof record['time'] === 'string' ? record['time'] : new Date().toISOString();
  const level = String(record['level'] ?? 'info').toUpperCase().padEnd(5);
  const module = typeof record['module'] === 'string' ? ` [${record['module']}]` : '';
  const message = typeof record['msg'] === 'string' ? ` ${record['msg']}` : '';
  const fields = Object.entries(record)
    .filter(([name]) => !OMITTED_FIELDS.has(name))
    .map(([name, value]) => ` ${name}=${formatValue(value)}`)
    .join('');
  let text = `${time} ${level}${module}${message}${fields}`;
  const err = record['err'];
  if (typeof err === 'object' && err !== null) {
    const { message: errMessage, code, stack } = err as { message?: unknown; code?: unknown; stack?: unknown };
    if (typeof code === 'string') text += ` err.code=${code}`;
    if (typeof errMessage === 'string') text += ` err=${JSON.stringify(errMessage)}`;
    if (typeof stack === 'string') text += `\n${stack.replace(/^/gm, '    | ')}`;
  }
  return `${text}\n`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(value);
}
