/**
 * Config problems and warnings, and the words for them: zod issues, unknown
 * keys and TOML syntax errors become one-line messages naming a TOML path.
 * No message quotes a value that could be key material.
 */
import { z } from 'zod';

import { TcpAoError, type ErrorCode, type WarningCode } from '../errors.js';
import { describeLength, looksLikeKeyMaterial, nearMiss } from './echo.js';
import { KNOWN_KEYS } from './schema.js';

export interface ConfigProblem {
  readonly code: ErrorCode;
  /** TOML path such as "ao_policy[0].mac_alg", or a file location for syntax and read errors. */
  readonly path: string;
  readonly message: string;
}

/** A legal but risky setting: reported, never refused. */
export interface ConfigWarning {
  readonly code: WarningCode;
  readonly path: string;
  readonly message: string;
}

/** One or more problems with a config; every message is safe to print. */
export class ConfigError extends TcpAoError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const first = problems[0];
    if (first === undefined) throw new TypeError('ConfigError needs at least one problem');
    super(first.code, problems.map((problem) => `${problem.path}: ${problem.message}`).join('; '));
    this.problems = Object.freeze([...problems]);
  }
}

export function syntaxProblem(source: string, err: unknown): ConfigProblem {
  const details = typeof err === 'object' && err !== null ? (err as { line?: unknown; col?: unknown; message?: unknown }) : {};
  const location =
    typeof details.line === 'number' && typeof details.col === 'number' ? `${source}:${details.line + 1}:${details.col + 1}` : source;
  // The parser's message continues with a source excerpt; only its first clause is kept.
  const firstLine = typeof details.message === 'string' ? (details.message.split('\n')[0] ?? '') : '';
  const reason = firstLine.replace(/ at row \d+, col \d+, pos \d+:?$/, '').trim();
  // "Unknown escape character: 57" quotes a character of the input, which may be a key's; the location is enough.
  const unquoted = reason.replace(/(character):? "?\d+"?/gi, '$1');
  return {
    code: 'ERR_TCPAO_CONFIG_SYNTAX',
    path: location,
    message: `not valid TOML: ${unquoted === '' ? 'parse error' : lowerFirst(unquoted)}`,
  };
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

export function dedupe(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const line = `${problem.code} ${problem.path} ${problem.message}`;
    if (seen.has(line)) return false;
    seen.add(line);
    return true;
  });
}

export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else {
      const segment = /^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part);
      text += text === '' ? segment : `.${segment}`;
    }
  }
  return text;
}

export function issueToProblems(issue: z.ZodIssue): ConfigProblem[] {
  const code: ErrorCode = 'ERR_TCPAO_CONFIG_INVALID';
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    return issue.keys.map((key) => unknownKeyProblem(issue.path, key));
  }
  if (issue.code === z.ZodIssueCode.invalid_type && issue.expected === 'object') {
    const section = issue.path.filter((part) => typeof part === 'string').join('.');
    const hint = section === '' ? '' : ` ([${section}])`;
    const received = RECEIVED_TYPES[issue.received] ?? issue.received;
    return [{ code, path: formatPath(issue.path), message: `expected a table${hint}, got ${received}` }];
  }
  return [{ code, path: formatPath(issue.path), message: issue.message }];
}

const RECEIVED_TYPES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  float: 'a float',
  bigint: 'an integer too large to represent',
  boolean: 'a boolean',
  array: 'an array',
  date: 'a date/time',
};

const SECRET_LIKE_KEY = /key$|secret|password|passwd|psk/i;

/**
 * An unknown key is named only when it is a near miss of a known one; any
 * other name (a key pasted as a TOML key, say) is described by its length.
 */
function unknownKeyProblem(parent: readonly (string | number)[], key: string): ConfigProblem {
  const code: ErrorCode = 'ERR_TCPAO_CONFIG_INVALID';
  const table = parent.filter((part) => typeof part === 'string').join('.');
  const known = KNOWN_KEYS[table] ?? [];
  const suggestion = nearMiss(key, known);
  const named = suggestion !== undefined && !looksLikeKeyMaterial(key);
  const path = named ? formatPath([...parent, key]) : formatPath(parent);
  const which = named ? 'unknown key' : `an unknown key (${describeLength(key)})`;
  if (table === 'ao_policy' && SECRET_LIKE_KEY.test(key) && key !== 'key_source') {
    return { code, path, message: `${which}; a key is never written into the config: set key_source = "env:NAME" or "file:PATH"` };
  }
  if (named) return { code, path, message: `${which}; did you mean "${suggestion}"?` };
  const where = table === '' ? 'at the top level' : `in [${table}]`;
  return { code, path, message: `${which}; allowed ${where}: ${known.join(', ')}` };
}
