/**
 * One inspection of a config: read the file once, parse it, run the schema and
 * the relation checks, resolve every key, and report everything found at once.
 * The loader throws on the problems; doctor reports them check by check.
 */
import { dirname, resolve } from 'node:path';

import { z } from 'zod';

import { TcpAoError } from '../errors.js';
import { parseToml, readConfigText, readConfigTextSync, readOrFailure } from './config-text.js';
import { isTable, rawPolicies, validPolicies, type IndexedPolicy } from './document.js';
import { interopWarnings } from './interop.js';
import { KeySourceError, parseKeySource, readKeyFile, resolveKey, resolveKeyPath, type SecretKey } from './keys.js';
import { selectInitiatorPolicies } from '../policy/select.js';
import { ConfigError, dedupe, issueToProblems, type ConfigProblem, type ConfigWarning } from './problems.js';
import { FileReadError } from './read-file.js';
import { checkRelations } from './relations.js';
import { deepFreeze, type ResolvedAoKey, type ResolvedAoPolicy, type SidecarConfig } from './resolved.js';
import { AoKeySchema, ConfigSchema, SECTION_COUNT_MESSAGE, type AoKeyEntry, type Mode, type ParsedConfig } from './schema.js';

export interface LoadOptions {
  /** The mode from --mode; a config for the other side is then an error. */
  readonly mode?: Mode;
  /** Where env: key sources are looked up; defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface TextLoadOptions extends LoadOptions {
  /** Label used in messages and as config.source. */
  readonly source: string;
  /** Directory that relative key file paths are resolved against. */
  readonly baseDir: string;
  /** How key files are read (see KeyResolveContext.readFile). */
  readonly readFile?: (path: string) => Buffer;
}

/** One key of a valid policy: its bytes, or the problem that stopped them resolving. */
export type InspectedKey =
  | { readonly entry: AoKeyEntry; readonly secret: SecretKey; readonly problem?: undefined }
  | { readonly entry: AoKeyEntry; readonly secret?: undefined; readonly problem: ConfigProblem | undefined };

export interface InspectedPolicy extends IndexedPolicy {
  /** In the order of policy.keys. */
  readonly keys: readonly InspectedKey[];
}

export interface ConfigInspection {
  /** The config's label in messages (its path as given, or the text's label). */
  readonly source: string;
  readonly baseDir: string;
  /** The parsed TOML document; undefined when the file could not be read or parsed. */
  readonly document: unknown;
  /** The whole document, when it passes the schema (key sources parsed, not resolved). */
  readonly parsed: ParsedConfig | undefined;
  /** Each [[ao_policy]] that passes the schema on its own, with its keys. */
  readonly policies: readonly InspectedPolicy[];
  /** Every problem, deduplicated, in the order found; empty when `config` is set. */
  readonly problems: readonly ConfigProblem[];
  /** Legal but risky settings. */
  readonly warnings: readonly ConfigWarning[];
  /** The loaded, frozen config, when there is no problem. */
  readonly config: SidecarConfig | undefined;
}

/** Inspects a config file, reading it and its key files synchronously. */
export function inspectConfigFile(path: string, options: LoadOptions = {}): ConfigInspection {
  const absolute = resolve(path);
  const textOptions: TextLoadOptions = { ...options, source: absolute, baseDir: dirname(absolute) };
  try {
    return inspectConfigText(readConfigTextSync(path, absolute), textOptions);
  } catch (err) {
    return unreadable(err, textOptions);
  }
}

/** inspectConfigFile without blocking the event loop: the config and every key file are read ahead, under the same rules. */
export async function inspectConfigFileAsync(path: string, options: LoadOptions = {}): Promise<ConfigInspection> {
  const absolute = resolve(path);
  const textOptions: TextLoadOptions = { ...options, source: absolute, baseDir: dirname(absolute) };
  let document: unknown;
  try {
    document = parseToml(await readConfigText(path, absolute), absolute);
  } catch (err) {
    return unreadable(err, textOptions);
  }
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
    return inspectDocument(document, { ...textOptions, readFile });
  } finally {
    for (const entry of prefetched.values()) if (Buffer.isBuffer(entry)) entry.fill(0);
  }
}

export function inspectConfigText(text: string, options: TextLoadOptions): ConfigInspection {
  let document: unknown;
  try {
    document = parseToml(text, options.source);
  } catch (err) {
    return unreadable(err, options);
  }
  return inspectDocument(document, options);
}

/** A config that stopped at reading or parsing: its one problem, nothing else. */
function unreadable(err: unknown, options: TextLoadOptions): ConfigInspection {
  if (!(err instanceof ConfigError)) throw err;
  const { source, baseDir } = options;
  return { source, baseDir, document: undefined, parsed: undefined, policies: [], problems: err.problems, warnings: [], config: undefined };
}

/** Inspects a parsed TOML document: schema, relations and keys, every problem collected. */
export function inspectDocument(document: unknown, options: TextLoadOptions): ConfigInspection {
  const problems: ConfigProblem[] = [];
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
  const keys = resolveKeys(raw, options);
  for (const policyKeys of keys) for (const key of policyKeys) if (key?.problem !== undefined) problems.push(key.problem);

  const valid = validPolicies(raw);
  const policies = valid.map(({ index, policy }): InspectedPolicy => ({
    index,
    policy,
    keys: policy.keys.map((entry, position): InspectedKey => {
      const outcome = keys[index]?.[position];
      return outcome?.secret === undefined ? { entry, problem: outcome?.problem } : { entry, secret: outcome.secret };
    }),
  }));
  const base = {
    source: options.source,
    baseDir: options.baseDir,
    document,
    parsed: parsed.success ? parsed.data : undefined,
    policies,
    warnings: [...relations.warnings, ...interopWarnings(valid)],
  };
  if (problems.length > 0 || !parsed.success) {
    // A failed parse always leaves at least one problem; the guard keeps that true.
    const reported: ConfigProblem[] =
      problems.length > 0 ? dedupe(problems) : [{ code: 'ERR_TCPAO_CONFIG_INVALID', path: '(top level)', message: 'invalid config' }];
    return { ...base, problems: reported, config: undefined };
  }
  return { ...base, problems: [], config: resolvedConfig(parsed.data, keys, options.source) };
}

/** Wipes every key an inspection resolved (once nothing will install them). */
export function wipeInspectedKeys(inspection: ConfigInspection): void {
  for (const policy of inspection.policies) for (const key of policy.keys) key.secret?.wipe();
  for (const policy of inspection.config?.ao_policy ?? []) for (const key of policy.keys) key.secret.wipe();
}

function resolvedConfig(parsed: ParsedConfig, keys: readonly (readonly (KeyOutcome | undefined)[])[], source: string): SidecarConfig {
  const resolved: ResolvedAoPolicy[] = parsed.ao_policy.map((policy, index) => {
    const secrets = keys[index] ?? [];
    const withSecrets = policy.keys.map((entry, position): ResolvedAoKey => {
      const secret = secrets[position]?.secret;
      if (secret === undefined) throw new TcpAoError('ERR_TCPAO_INTERNAL', `key of ao_policy[${index}] missing after validation`);
      return { ...entry, secret };
    });
    const preferred = withSecrets.find((entry) => entry.role === 'preferred') ?? withSecrets[0];
    if (preferred === undefined) throw new TcpAoError('ERR_TCPAO_INTERNAL', `ao_policy[${index}] has no key after validation`);
    return { ...policy, index, key: preferred.secret, keys: withSecrets };
  });
  const activePolicies = parsed.mode === 'initiator' ? selectInitiatorPolicies(resolved, parsed.initiator.remote_ao).selected : resolved;
  return deepFreeze({ ...parsed, ao_policy: resolved, activePolicies, source } as SidecarConfig);
}

type KeyOutcome = { readonly secret: SecretKey; readonly problem?: undefined } | { readonly secret?: undefined; readonly problem: ConfigProblem };

/** Each policy's keys in the order of AoPolicy.keys: the single key_source, or one per [[ao_policy.key]] table. */
function resolveKeys(raw: Record<string, unknown>, options: TextLoadOptions): (KeyOutcome | undefined)[][] {
  const keySourceSchema = AoKeySchema.shape.key_source;
  const resolveOne = (value: unknown, path: string): KeyOutcome | undefined => {
    const source = keySourceSchema.safeParse(value);
    if (!source.success) return undefined;
    try {
      const context = { env: options.env ?? process.env, baseDir: options.baseDir };
      return { secret: resolveKey(source.data, options.readFile === undefined ? context : { ...context, readFile: options.readFile }) };
    } catch (err) {
      if (!(err instanceof KeySourceError)) throw err;
      return { problem: { code: 'ERR_TCPAO_KEY_SOURCE', path, message: err.message } };
    }
  };
  return rawPolicies(raw).map((candidate, index) => {
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

/** Every file a key source of the document names, resolved; the schema decides later whether each is valid. */
function keyFilePaths(document: unknown, baseDir: string): string[] {
  const sources: unknown[] = [];
  for (const policy of rawPolicies(document)) {
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
