/**
 * Config loading: read the file, parse TOML, validate with zod, check the
 * rules that relate fields to each other, resolve every key, and freeze.
 * Every problem found is collected and reported together, one per line, each
 * naming its TOML path; the caller prints them once and exits with status 2.
 */
import { dirname, resolve } from 'node:path';

import TOML from '@iarna/toml';
import { z } from 'zod';

import { TcpAoError, type ErrorCode } from '../errors.js';
import { formatEndpoint, formatPrefix, isLoopback, type Endpoint } from './address.js';
import { KeySourceError, parseKeySource, readKeyFile, resolveKey, resolveKeyPath, SecretKey } from './keys.js';
import { describeErrno, FileReadError, readRegularFile, readRegularFileSync, type FileReadFailure } from './read-file.js';
import { describeLength, looksLikeKeyMaterial, nearMiss } from './echo.js';
import { describeMismatch, idClash, selectInitiatorPolicies } from '../policy/select.js';
import {
  AoKeySchema,
  AoPolicySchema,
  ConfigSchema,
  InitiatorSchema,
  KNOWN_KEYS,
  MAX_KEYS_PER_SOCKET,
  SECTION_COUNT_MESSAGE,
  TerminatorSchema,
  type AoKeyEntry,
  type AoPolicy,
  type Mode,
  type ParsedConfig,
} from './schema.js';

export interface ConfigProblem {
  readonly code: ErrorCode;
  /** TOML path such as "ao_policy[0].mac_alg", or a file location for syntax and read errors. */
  readonly path: string;
  readonly message: string;
}

export interface ConfigWarning {
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

/** One key of a policy with its bytes. */
export type ResolvedAoKey = AoKeyEntry & { readonly secret: SecretKey };

export type ResolvedAoPolicy = Omit<AoPolicy, 'keys'> & {
  /** Position in the file: ao_policy[index]. */
  readonly index: number;
  /** The preferred key's bytes (the same SecretKey as in `keys`). */
  readonly key: SecretKey;
  /** Every key of the policy in file order: one for the single-key form, the [[ao_policy.key]] tables otherwise. */
  readonly keys: readonly ResolvedAoKey[];
};

type WithKeys<C> = C extends { readonly ao_policy: unknown }
  ? Omit<C, 'ao_policy'> & {
      /** Every policy, in file order, with its key. */
      readonly ao_policy: readonly ResolvedAoPolicy[];
      /**
       * The policies this side installs, in file order: on the initiator those
       * applying to remote_ao (never empty), on the terminator all of them.
       */
      readonly activePolicies: readonly ResolvedAoPolicy[];
      /** Absolute path of the config file (or the label given to loadConfigText). */
      readonly source: string;
    }
  : never;

/** The loaded, validated, frozen config. Discriminate on `mode`. */
export type SidecarConfig = WithKeys<ParsedConfig>;
export type InitiatorConfig = Extract<SidecarConfig, { readonly mode: 'initiator' }>;
export type TerminatorConfig = Extract<SidecarConfig, { readonly mode: 'terminator' }>;

export interface LoadedConfig {
  readonly config: SidecarConfig;
  /** Legal but risky settings, to print or log at warn level. */
  readonly warnings: readonly ConfigWarning[];
}

export interface LoadOptions {
  /** The mode from --mode; a config for the other side is then an error. */
  readonly mode?: Mode;
  /** Where env: key sources are looked up; defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

/** A config file larger than this is certainly not a sidecar config. */
export const MAX_CONFIG_BYTES = 1_048_576;

export function loadConfigFile(path: string, options: LoadOptions = {}): LoadedConfig {
  const absolute = resolve(path);
  const text = configText(path, () => readRegularFileSync(absolute, MAX_CONFIG_BYTES));
  return loadConfigText(text, { ...options, source: absolute, baseDir: dirname(absolute) });
}

/**
 * loadConfigFile for a running sidecar: the config and every key file are read
 * without blocking the event loop, under the same rules, then validated alike.
 */
/** The config file's text under the loader's rules, without blocking; throws the ConfigError loadConfigFile would. */
export async function readConfigText(path: string): Promise<string> {
  const bytes = await readOrFailure(() => readRegularFile(resolve(path), MAX_CONFIG_BYTES));
  return configText(path, () => {
    if (bytes instanceof FileReadError) throw bytes;
    return bytes;
  });
}

export async function loadConfigFileAsync(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const absolute = resolve(path);
  const text = await readConfigText(path);
  const textOptions: TextLoadOptions = { ...options, source: absolute, baseDir: dirname(absolute) };
  const document = parseToml(text, textOptions.source);
  const prefetched = new Map<string, Buffer | FileReadError>();
  try {
    for (const keyPath of keyFilePaths(document, textOptions.baseDir)) {
      if (!prefetched.has(keyPath)) prefetched.set(keyPath, await readOrFailure(() => readKeyFile(keyPath)));
    }
    const readFile = (keyPath: string): Buffer => {
      const entry = prefetched.get(keyPath);
      if (entry === undefined) throw new TcpAoError('ERR_TCPAO_INTERNAL', 'a key file was not read ahead of validation');
      if (entry instanceof FileReadError) throw entry;
      // The key reader zeroes what it is given; hand it a copy so a path named twice still reads.
      return Buffer.from(entry);
    };
    return validateConfig(document, { ...textOptions, readFile });
  } finally {
    for (const entry of prefetched.values()) if (Buffer.isBuffer(entry)) entry.fill(0);
  }
}

async function readOrFailure(read: () => Promise<Buffer>): Promise<Buffer | FileReadError> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof FileReadError) return err;
    throw err;
  }
}

/** Every file a key source of the document names, resolved; the schema decides later whether each is valid. */
function keyFilePaths(document: unknown, baseDir: string): string[] {
  const sources: unknown[] = [];
  const policies = isTable(document) && Array.isArray(document['ao_policy']) ? (document['ao_policy'] as unknown[]) : [];
  for (const policy of policies) {
    if (!isTable(policy)) continue;
    sources.push(policy['key_source']);
    if (Array.isArray(policy['key'])) for (const table of policy['key'] as unknown[]) if (isTable(table)) sources.push(table['key_source']);
  }
  return sources.flatMap((source) => {
    if (typeof source !== 'string') return [];
    const parsed = parseKeySource(source);
    return parsed.ok && parsed.value.kind === 'file' ? [resolveKeyPath(parsed.value.ref, baseDir)] : [];
  });
}

const UTF8_BOM = '\uFEFF';

/** The config's text from its bytes, or the one coded problem that stops it being read. */
function configText(path: string, read: () => Buffer): string {
  let bytes: Buffer;
  try {
    bytes = read();
  } catch (err) {
    if (err instanceof FileReadError) throw readProblem(path, describeConfigReadFailure(err.failure));
    throw err;
  }
  const text = bytes.toString('utf8');
  if (text.startsWith(UTF8_BOM)) {
    throw new ConfigError([
      {
        code: 'ERR_TCPAO_CONFIG_SYNTAX',
        path,
        message: 'starts with a UTF-8 byte order mark (EF BB BF); save the file as UTF-8 without a BOM',
      },
    ]);
  }
  return text;
}

function describeConfigReadFailure(failure: FileReadFailure): string {
  switch (failure.reason) {
    case 'open':
      return `cannot be read: ${describeErrno(failure.code)}; check --config`;
    case 'not-regular':
      return failure.kind === 'directory'
        ? 'is a directory; give the config file itself'
        : `is a ${failure.kind}, not a regular file; give the config file itself (a FIFO or device could block or never end)`;
    case 'too-large':
      return failure.size === undefined
        ? `is larger than ${MAX_CONFIG_BYTES} bytes, the most a config may be`
        : `is ${failure.size} bytes; a config is at most ${MAX_CONFIG_BYTES}`;
    case 'read':
      return `cannot be read: ${describeErrno(failure.code)}; check --config`;
  }
}

function readProblem(path: string, message: string): ConfigError {
  return new ConfigError([{ code: 'ERR_TCPAO_CONFIG_READ', path, message }]);
}

export interface TextLoadOptions extends LoadOptions {
  /** Label used in messages and as config.source. */
  readonly source: string;
  /** Directory that relative key file paths are resolved against. */
  readonly baseDir: string;
  /** How key files are read (see KeyResolveContext.readFile). */
  readonly readFile?: (path: string) => Buffer;
}

export function loadConfigText(text: string, options: TextLoadOptions): LoadedConfig {
  return validateConfig(parseToml(text, options.source), options);
}

function parseToml(text: string, source: string): unknown {
  try {
    return TOML.parse(text);
  } catch (err) {
    throw new ConfigError([syntaxProblem(source, err)]);
  }
}

function syntaxProblem(source: string, err: unknown): ConfigProblem {
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

/** Validates a parsed TOML document; throws ConfigError listing every problem. */
export function validateConfig(document: unknown, options: TextLoadOptions): LoadedConfig {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigWarning[] = [];
  const parsed = ConfigSchema.safeParse(document);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // The section rule is reported by checkRelations with better wording.
      if (issue.code === z.ZodIssueCode.custom && issue.message === SECTION_COUNT_MESSAGE) continue;
      problems.push(...issueToProblems(issue));
    }
  }
  const raw = isTable(document) ? document : {};
  const relations = checkRelations(raw, options.mode);
  problems.push(...relations.problems);
  warnings.push(...relations.warnings);
  const keys = resolveKeys(raw, options, problems);

  if (problems.length > 0 || !parsed.success) {
    // A failed parse always leaves at least one problem; the guard keeps that true.
    throw new ConfigError(problems.length > 0 ? dedupe(problems) : [{ code: 'ERR_TCPAO_CONFIG_INVALID', path: '(top level)', message: 'invalid config' }]);
  }

  const resolved: ResolvedAoPolicy[] = parsed.data.ao_policy.map((policy, index) => {
    const secrets = keys[index] ?? [];
    const withSecrets = policy.keys.map((entry, position): ResolvedAoKey => {
      const secret = secrets[position];
      if (secret === undefined) throw new TcpAoError('ERR_TCPAO_INTERNAL', `key of ao_policy[${index}] missing after validation`);
      return { ...entry, secret };
    });
    const preferred = withSecrets.find((entry) => entry.role === 'preferred') ?? withSecrets[0];
    if (preferred === undefined) throw new TcpAoError('ERR_TCPAO_INTERNAL', `ao_policy[${index}] has no key after validation`);
    return { ...policy, index, key: preferred.secret, keys: withSecrets };
  });
  const activePolicies =
    parsed.data.mode === 'initiator' ? selectInitiatorPolicies(resolved, parsed.data.initiator.remote_ao).selected : resolved;
  const config = { ...parsed.data, ao_policy: resolved, activePolicies, source: options.source } as SidecarConfig;
  return deepFreeze({ config, warnings });
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function dedupe(problems: readonly ConfigProblem[]): ConfigProblem[] {
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

function issueToProblems(issue: z.ZodIssue): ConfigProblem[] {
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

interface Relations {
  readonly problems: ConfigProblem[];
  readonly warnings: ConfigWarning[];
}

/**
 * Rules between fields, checked over whichever parts of the document are
 * individually valid, so that they are reported alongside unrelated errors.
 */
function checkRelations(raw: Record<string, unknown>, requestedMode: Mode | undefined): Relations {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigWarning[] = [];
  const invalid = (path: string, message: string, code: ErrorCode = 'ERR_TCPAO_CONFIG_INVALID'): void => {
    problems.push({ code, path, message });
  };

  const hasInitiator = raw['initiator'] !== undefined;
  const hasTerminator = raw['terminator'] !== undefined;
  let mode: Mode | undefined;
  if (hasInitiator && hasTerminator) {
    invalid('(top level)', `both [initiator] and [terminator] are present; ${SECTION_COUNT_MESSAGE}, for the side this process runs`);
  } else if (!hasInitiator && !hasTerminator) {
    const wanted = requestedMode === undefined ? 'an [initiator] or a [terminator] section' : `the [${requestedMode}] section`;
    invalid('(top level)', `no [initiator] or [terminator] section; add ${wanted}`);
  } else {
    mode = hasInitiator ? 'initiator' : 'terminator';
    if (requestedMode !== undefined && requestedMode !== mode) {
      invalid(
        mode,
        `--mode ${requestedMode} was given but this config has a [${mode}] section; run with --mode ${mode} or use the ${requestedMode}'s config`,
        'ERR_TCPAO_MODE_MISMATCH',
      );
    }
  }

  const rawPolicies = Array.isArray(raw['ao_policy']) ? (raw['ao_policy'] as unknown[]) : [];
  const policies: { readonly index: number; readonly policy: AoPolicy }[] = [];
  rawPolicies.forEach((candidate, index) => {
    const result = AoPolicySchema.safeParse(candidate);
    if (result.success) policies.push({ index, policy: result.data });
  });
  const allPoliciesValid = rawPolicies.length > 0 && policies.length === rawPolicies.length;

  const names = new Map<string, number>();
  for (const { index, policy } of policies) {
    const earlier = names.get(policy.name);
    if (earlier !== undefined) {
      invalid(`ao_policy[${index}].name`, `"${policy.name}" is already the name of ao_policy[${earlier}]; names must be unique`);
    } else names.set(policy.name, index);
  }

  for (let later = 0; later < policies.length; later++) {
    for (let earlier = 0; earlier < later; earlier++) {
      const a = policies[earlier];
      const b = policies[later];
      if (a === undefined || b === undefined) continue;
      // Every key of one policy against every key of the other: all of them sit on the same sockets.
      for (const bKey of b.policy.keys) {
        for (const aKey of a.policy.keys) {
          const clash = idClash(
            { ...a.policy, send_id: aKey.send_id, recv_id: aKey.recv_id },
            { ...b.policy, send_id: bKey.send_id, recv_id: bKey.recv_id },
          );
          if (clash === undefined) continue;
          const ids = [
            clash.sendId ? `send_id ${bKey.send_id}` : undefined,
            clash.recvId ? `recv_id ${bKey.recv_id}` : undefined,
          ].filter((id) => id !== undefined);
          const where = (index: number, key: AoKeyEntry) =>
            key.position === undefined ? `ao_policy[${index}]` : `ao_policy[${index}].key[${key.position}]`;
          invalid(
            where(b.index, bKey),
            `${ids.join(' and ')} already used by ${where(a.index, aKey)} ("${a.policy.name}") for an overlapping peer ` +
              `(${formatPrefix(b.policy.peer_ip)} and ${formatPrefix(a.policy.peer_ip)}); the kernel refuses this (EEXIST): ` +
              'give keys for the same peer distinct send_id and recv_id',
          );
        }
      }
    }
  }

  if (mode === 'terminator') {
    const listenerKeys = countInstalledKeys(policies.map((entry) => entry.policy));
    if (listenerKeys > MAX_KEYS_PER_SOCKET) {
      invalid(
        'ao_policy',
        `the AO listener would hold ${listenerKeys} keys (every key of every [[ao_policy]] but deprecated ones), ` +
          `more than the ${MAX_KEYS_PER_SOCKET} keys a socket takes: split the peers over several terminators or drop unused keys`,
      );
    }
    const section = TerminatorSchema.safeParse(raw['terminator']);
    if (section.success) {
      const listener = section.data.listen_ao;
      for (const { index, policy } of policies) checkTerminatorPolicy(listener, index, policy, invalid);
      if (!isLoopback(section.data.forward_plain.host, section.data.forward_plain.family)) {
        warnings.push({
          path: 'terminator.forward_plain',
          message: `${formatEndpoint(section.data.forward_plain)} is not a loopback address: the plain leg to the app crosses the network unauthenticated`,
        });
      }
    }
  }

  if (mode === 'initiator') {
    const section = InitiatorSchema.safeParse(raw['initiator']);
    if (section.success) {
      const { remote_ao: remote, listen_plain: listen, source_ip: source } = section.data;
      if (source !== undefined && source.family !== remote.family) {
        invalid('initiator.source_ip', `is IPv${source.family} but remote_ao is IPv${remote.family}; use an address of the same family`);
      }
      if (!isLoopback(listen.host, listen.family)) {
        warnings.push({
          path: 'initiator.listen_plain',
          message: `${formatEndpoint(listen)} is not a loopback address: anyone who reaches it can send through the AO session; prefer 127.0.0.1 or [::1]`,
        });
      }
      if (allPoliciesValid) {
        const selection = selectInitiatorPolicies(
          policies.map((entry) => ({ ...entry.policy, index: entry.index })),
          remote,
        );
        const connectionKeys = countInstalledKeys(selection.selected);
        if (connectionKeys > MAX_KEYS_PER_SOCKET) {
          invalid(
            'ao_policy',
            `each connection to ${formatEndpoint(remote)} would hold ${connectionKeys} keys (every key but deprecated ones of the ` +
              `${selection.selected.length} policies that apply to it), more than the ${MAX_KEYS_PER_SOCKET} keys a socket takes: drop unused keys`,
          );
        }
        if (selection.selected.length === 0) {
          const reasons = selection.unused.map((policy) => `ao_policy[${policy.index}]: ${describeMismatch(policy, remote)}`).join('; ');
          invalid(
            'initiator.remote_ao',
            `no [[ao_policy]] applies to ${formatEndpoint(remote)} (${reasons}); the initiator never dials without TCP-AO: ` +
              'add a policy whose peer_ip contains this address and whose peer_port is 0 or this port',
          );
        }
        for (const policy of selection.unused) {
          if (selection.selected.length === 0) break;
          warnings.push({
            path: `ao_policy[${policy.index}]`,
            message: `not used on this initiator: ${describeMismatch(policy, remote)}`,
          });
        }
      }
    }
  }
  return { problems, warnings };
}

/** Keys one socket gets from these policies, as the sidecar installs them on new sockets (deprecated keys never are). */
function countInstalledKeys(policies: readonly AoPolicy[]): number {
  return policies.reduce((sum, policy) => sum + policy.keys.filter((key) => key.role !== 'deprecated').length, 0);
}

function checkTerminatorPolicy(
  listener: Endpoint,
  index: number,
  policy: AoPolicy,
  invalid: (path: string, message: string) => void,
): void {
  const peer = policy.peer_ip;
  // The AO listener is IPV6_V6ONLY (native/tcp_ao.cc create_listener), so each family needs its own listener.
  if (peer.family !== listener.family) {
    invalid(
      `ao_policy[${index}].peer_ip`,
      `IPv${peer.family} peer ${formatPrefix(peer)} cannot reach the IPv${listener.family} listener ${formatEndpoint(listener)}; ` +
        `an AO listener serves one address family: give listen_ao an IPv${peer.family} address or run a second terminator`,
    );
  }
  if (policy.peer_port !== 0 && policy.peer_port !== listener.port) {
    invalid(
      `ao_policy[${index}].peer_port`,
      `${policy.peer_port} differs from listen_ao's port ${listener.port}; on a terminator peer_port names the AO wire port, ` +
        `so set it to ${listener.port} or 0 (the kernel matches keys by address only)`,
    );
  }
}

/** Each policy's keys in the order of AoPolicy.keys: the single key_source, or one per [[ao_policy.key]] table. */
function resolveKeys(raw: Record<string, unknown>, options: TextLoadOptions, problems: ConfigProblem[]): (SecretKey | undefined)[][] {
  const rawPolicies = Array.isArray(raw['ao_policy']) ? (raw['ao_policy'] as unknown[]) : [];
  const keySourceSchema = AoKeySchema.shape.key_source;
  const resolveOne = (value: unknown, path: string): SecretKey | undefined => {
    const source = keySourceSchema.safeParse(value);
    if (!source.success) return undefined;
    try {
      const context = { env: options.env ?? process.env, baseDir: options.baseDir };
      return resolveKey(source.data, options.readFile === undefined ? context : { ...context, readFile: options.readFile });
    } catch (err) {
      if (!(err instanceof KeySourceError)) throw err;
      problems.push({ code: 'ERR_TCPAO_KEY_SOURCE', path, message: err.message });
      return undefined;
    }
  };
  return rawPolicies.map((candidate, index) => {
    if (!isTable(candidate)) return [];
    const tables = candidate['key'];
    if (Array.isArray(tables)) {
      return tables.map((table: unknown, position) =>
        isTable(table) ? resolveOne(table['key_source'], `ao_policy[${index}].key[${position}].key_source`) : undefined,
      );
    }
    return [resolveOne(candidate['key_source'], `ao_policy[${index}].key_source`)];
  });
}

/** Freezes plain objects and arrays all the way down; a SecretKey is frozen as is. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  if (value instanceof SecretKey) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}
