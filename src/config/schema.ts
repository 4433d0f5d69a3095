// size: the whole TOML schema reads as one file, each section beside the field helpers it shares.
/**
 * The config schema: exactly the TOML of the deployment spec (section 8) plus
 * the documented extras in docs/configuration.md. Field names stay as the TOML
 * spells them; addresses and key sources come out parsed. Every object is
 * strict, so a misspelt key is an error rather than a silently ignored default.
 *
 * This module checks each value on its own. Rules that relate values to each
 * other (one mode section, policy overlaps, which policies apply) live in
 * relations.ts so that they can run even when some unrelated field is invalid.
 */
import { z } from 'zod';

import { formatEndpoint, isLoopback, parseEndpoint, parseIpLiteral, parsePeerPrefix, type EndpointRules } from './address.js';
import { describeLength, looksLikeKeyMaterial, nearMiss } from './echo.js';
import { parseKeySource } from './keys.js';
import {
  DEFAULT_MACLEN,
  MAX_BACKLOG,
  MAX_IFINDEX,
  MAX_KEEPALIVE_PROBES,
  MAX_KEEPALIVE_SECS,
  MAX_KEY_ID,
  MAX_MACLEN,
  MIN_MACLEN,
} from '../native/index.js';

export const MAC_ALGORITHMS = ['hmac-sha1', 'hmac-sha256', 'aes-128-cmac'] as const;
export const LOG_FORMATS = ['json', 'human'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const MODES = ['initiator', 'terminator'] as const;

export type Mode = (typeof MODES)[number];

// The limits live with the native boundary (src/native/limits.ts); re-exported for the config's readers.
export { DEFAULT_MACLEN, MAX_KEYS_PER_SOCKET, MAX_MACLEN, MIN_MACLEN } from '../native/index.js';

export const GLOBAL_DEFAULTS = {
  log_format: 'json',
  log_level: 'info',
  idle_timeout_secs: 120,
  tcp_keepalive: true,
  keepalive_time_secs: 30,
  keepalive_intvl_secs: 10,
  keepalive_probes: 3,
  connect_timeout_secs: 10,
  max_connections: 1_024,
  max_connections_per_peer: 256,
  // Below the supervisor's grace (12 s) and the container stop timeout (15 s): the forced path ends by 9 s.
  shutdown_timeout_secs: 8,
  listen_backlog: 511,
  metrics_allow_remote: false,
} as const;

/** Largest whole-second timeout Node's timers hold (2^31 - 1 ms). */
const MAX_TIMER_SECS = 2_147_483;

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : `the float ${value}`;
  if (typeof value === 'bigint') return 'an integer too large to represent';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return 'a string';
  if (value instanceof Date) return 'a date/time';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'a table';
  return typeof value;
}

function integer(min: number, max: number, note = ''): z.ZodNumber {
  const expected = `an integer from ${min} to ${max}${note}`;
  return z
    .number({
      errorMap: (issue, ctx) => ({
        message:
          issue.code === 'invalid_type' && issue.received === 'undefined'
            ? `missing; expected ${expected}`
            : `expected ${expected}, got ${describeValue(ctx.data)}`,
      }),
    })
    .int()
    .min(min)
    .max(max);
}

function boolean(): z.ZodBoolean {
  return z.boolean({
    errorMap: (_issue, ctx) => ({ message: `expected true or false, got ${describeValue(ctx.data)}` }),
  });
}

/**
 * Why a string is not one of `values`, never repeating it (it may be a key
 * pasted into the wrong field): a near miss names the allowed value it was
 * probably meant to be, anything else is described by its length.
 */
function notOneOf(value: string, values: readonly string[], what: string, choices: string): string {
  const suggestion = looksLikeKeyMaterial(value) ? undefined : nearMiss(value, values);
  if (suggestion !== undefined) return `unknown ${what}; did you mean "${suggestion}"? use ${choices}`;
  return `not a known ${what} (${describeLength(value)}); use ${choices}`;
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T, what: string): z.ZodEnum<z.Writeable<T>> {
  const choices = `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
  return z.enum(values as unknown as z.Writeable<T>, {
    errorMap: (issue, ctx) => ({
      message:
        issue.code === 'invalid_type' && issue.received === 'undefined'
          ? `missing; use ${choices}`
          : typeof ctx.data === 'string'
            ? notOneOf(ctx.data, values, what, choices)
            : `expected a string (${choices}), got ${describeValue(ctx.data)}`,
    }),
  });
}

function text(expected: string): z.ZodString {
  return z.string({
    errorMap: (issue, ctx) => ({
      message:
        issue.code === 'invalid_type' && issue.received === 'undefined'
          ? `missing; expected ${expected}`
          : `expected ${expected}, got ${describeValue(ctx.data)}`,
    }),
  });
}

function endpoint(rules: EndpointRules) {
  return text('a string "host:port"').transform((value, ctx) => {
    const parsed = parseEndpoint(value, rules);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.message });
    return z.NEVER;
  });
}

export const GlobalSchema = z
  .object({
    log_format: oneOf(LOG_FORMATS, 'log format').default(GLOBAL_DEFAULTS.log_format),
    log_level: oneOf(LOG_LEVELS, 'log level').default(GLOBAL_DEFAULTS.log_level),
    idle_timeout_secs: integer(0, MAX_TIMER_SECS, ' (0 turns the idle timeout off)').default(GLOBAL_DEFAULTS.idle_timeout_secs),
    tcp_keepalive: boolean().default(GLOBAL_DEFAULTS.tcp_keepalive),
    keepalive_time_secs: integer(1, MAX_KEEPALIVE_SECS).default(GLOBAL_DEFAULTS.keepalive_time_secs),
    keepalive_intvl_secs: integer(1, MAX_KEEPALIVE_SECS).default(GLOBAL_DEFAULTS.keepalive_intvl_secs),
    keepalive_probes: integer(1, MAX_KEEPALIVE_PROBES).default(GLOBAL_DEFAULTS.keepalive_probes),
    connect_timeout_secs: integer(1, 3_600).default(GLOBAL_DEFAULTS.connect_timeout_secs),
    max_connections: integer(1, 1_000_000).default(GLOBAL_DEFAULTS.max_connections),
    max_connections_per_peer: integer(1, 1_000_000).default(GLOBAL_DEFAULTS.max_connections_per_peer),
    shutdown_timeout_secs: integer(0, 3_600).default(GLOBAL_DEFAULTS.shutdown_timeout_secs),
    listen_backlog: integer(1, MAX_BACKLOG).default(GLOBAL_DEFAULTS.listen_backlog),
    // Off unless set; a bare port number means loopback (127.0.0.1).
    metrics_listen: z
      .preprocess(
        (value) => (typeof value === 'number' && Number.isInteger(value) ? `127.0.0.1:${value}` : value),
        endpoint({ allowUnspecified: true }),
      )
      .optional(),
    // The pages are unauthenticated: serving them beyond loopback takes this explicit opt-in.
    metrics_allow_remote: boolean().default(GLOBAL_DEFAULTS.metrics_allow_remote),
    pid_file: text('a file path').min(1, { message: 'is empty; give a file path or leave pid_file out' }).optional(),
  })
  .strict();

/** [global] with the rule that relates metrics_listen to metrics_allow_remote. */
const GlobalWithRules = GlobalSchema.superRefine((global, ctx) => {
  const listen = global.metrics_listen;
  if (listen === undefined || global.metrics_allow_remote || isLoopback(listen.host, listen.family)) return;
  ctx.addIssue({
    code: z.ZodIssueCode.custom,
    path: ['metrics_listen'],
    message:
      `${formatEndpoint(listen)} is not a loopback address, and /metrics and /status are unauthenticated ` +
      '(they show peers, key ids and counters): listen on 127.0.0.1, or set metrics_allow_remote = true ' +
      'and restrict who can reach the port',
  });
});

export const InitiatorSchema = z
  .object({
    listen_plain: endpoint({ allowUnspecified: true }),
    remote_ao: endpoint({ allowUnspecified: false }),
    source_ip: text('an IP literal')
      .transform((value, ctx) => {
        const parsed = parseIpLiteral(value);
        if (parsed.ok) return parsed.value;
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.message });
        return z.NEVER;
      })
      .optional(),
  })
  .strict();

export const TerminatorSchema = z
  .object({
    listen_ao: endpoint({ allowUnspecified: true }),
    forward_plain: endpoint({ allowUnspecified: false }),
  })
  .strict();

const KEY_ID = integer(0, MAX_KEY_ID);

/**
 * What a key does on a policy (BIRD's preferred/deprecated keys):
 * - preferred: sent with and asked of the peer (current key and RNextKeyID); exactly one per policy;
 * - accept: installed everywhere and accepted; sent with only when the peer asks for it (its RNextKeyID);
 * - deprecated: kept on established connections until the peer has moved off it, then removed;
 *   never installed for new connections.
 */
export const KEY_ROLES = ['preferred', 'accept', 'deprecated'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

const keySourceField = () =>
  text('a key source such as "env:TCPAO_KEY"').transform((value, ctx) => {
    const parsed = parseKeySource(value);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.message });
    return z.NEVER;
  });

/** One [[ao_policy.key]] table. */
export const AoKeySchema = z
  .object({
    send_id: KEY_ID,
    recv_id: KEY_ID,
    mac_alg: oneOf(MAC_ALGORITHMS, 'algorithm'),
    key_source: keySourceField(),
    role: oneOf(KEY_ROLES, 'key role').default('accept'),
    // Per-key interop knobs (Junos sets tcp-ao-option per key); absent means the policy's value.
    maclen: integer(MIN_MACLEN, MAX_MACLEN).optional(),
    exclude_tcp_options: boolean().optional(),
  })
  .strict();

/** The fields of one [[ao_policy]] table, each checked on its own. */
export const AoPolicyFields = z
  .object({
    name: text('a policy name').superRefine((value, ctx) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: 'must be 1 to 64 characters of letters, digits, ".", "_" and "-", starting with a letter or digit',
        });
      } else if (looksLikeKeyMaterial(value)) {
        // A name is printed in log lines, the check-config summary and /status, so it must not be a key pasted here.
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: 'looks like key material (a long run of hex or base64), and a name is printed in logs and /status: name the peer or link instead',
        });
      }
    }),
    peer_ip: text('an IP address or prefix').transform((value, ctx) => {
      const parsed = parsePeerPrefix(value);
      if (parsed.ok) return parsed.value;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.message });
      return z.NEVER;
    }),
    peer_port: integer(0, 65_535, ' (0 means any port)').default(0),
    keyid: KEY_ID.optional(),
    send_id: KEY_ID.optional(),
    recv_id: KEY_ID.optional(),
    mac_alg: oneOf(MAC_ALGORITHMS, 'algorithm').optional(),
    key_source: keySourceField().optional(),
    key: z
      .array(AoKeySchema, {
        errorMap: (_issue, ctx) => ({
          message:
            typeof ctx.data === 'string'
              ? 'a key is never written into the config: set key_source = "env:NAME" or "file:PATH" ' +
                '(several keys go in [[ao_policy.key]] tables, each with its own key_source)'
              : `expected one or more [[ao_policy.key]] tables, got ${describeValue(ctx.data)}`,
        }),
      })
      .min(1, { message: 'is empty; add at least one [[ao_policy.key]] table or drop "key"' })
      .optional(),
    maclen: integer(MIN_MACLEN, MAX_MACLEN).default(DEFAULT_MACLEN),
    exclude_tcp_options: boolean().default(false),
    vrf_ifindex: integer(0, MAX_IFINDEX, ' (0 means the default VRF)').default(0),
  })
  .strict();

const SINGLE_KEY_FIELDS = ['keyid', 'send_id', 'recv_id', 'mac_alg', 'key_source'] as const;

/**
 * A key of a policy after validation; `position` is its index in [[ao_policy.key]], or undefined for the single-key form.
 * `maclen` and `exclude_tcp_options` are the key's own when its table sets them, else the policy's.
 */
export interface AoKeyEntry {
  readonly send_id: number;
  readonly recv_id: number;
  readonly mac_alg: (typeof MAC_ALGORITHMS)[number];
  readonly key_source: z.infer<typeof AoKeySchema>['key_source'];
  readonly role: KeyRole;
  readonly maclen: number;
  readonly exclude_tcp_options: boolean;
  readonly position: number | undefined;
}

/**
 * A policy has either the spec's single key (keyid, optional send_id/recv_id,
 * mac_alg, key_source on the policy) or a list of [[ao_policy.key]] tables.
 * Either way the output carries `keys`, and the policy-level id, algorithm and
 * key source fields describe the preferred key.
 */
export const AoPolicySchema = AoPolicyFields.superRefine((policy, ctx) => {
  if (policy.key === undefined) {
    if (policy.keyid === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['keyid'], message: `missing; expected an integer from 0 to ${MAX_KEY_ID}` });
    }
    if (policy.mac_alg === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['mac_alg'],
        message: `missing; use ${MAC_ALGORITHMS.slice(0, -1).join(', ')} or ${MAC_ALGORITHMS[MAC_ALGORITHMS.length - 1]}`,
      });
    }
    if (policy.key_source === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['key_source'], message: 'missing; expected a key source such as "env:TCPAO_KEY"' });
    }
    return;
  }
  for (const field of SINGLE_KEY_FIELDS) {
    if (policy[field] !== undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [field],
        message: 'cannot be combined with [[ao_policy.key]] tables; give each key its ids, mac_alg and key_source in its own table',
      });
    }
  }
  const preferred = policy.key.filter((key) => key.role === 'preferred').length;
  if (preferred !== 1) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['key'],
      message: `has ${preferred} keys with role = "preferred"; mark exactly one key preferred (the one to send with)`,
    });
  }
  const firstKeyWith = { send_id: new Map<number, number>(), recv_id: new Map<number, number>() };
  policy.key.forEach((key, index) => {
    for (const field of ['send_id', 'recv_id'] as const) {
      const earlier = firstKeyWith[field].get(key[field]);
      if (earlier !== undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['key', index, field],
          message: `${key[field]} is already the ${field} of key[${earlier}]; the kernel refuses two keys with one ${field} for a peer (EEXIST)`,
        });
      } else firstKeyWith[field].set(key[field], index);
    }
  });
}).transform((policy) => {
  const { key: tables, ...fields } = policy;
  const keys: AoKeyEntry[] =
    tables === undefined
      ? [
          {
            send_id: policy.send_id ?? (policy.keyid as number),
            recv_id: policy.recv_id ?? (policy.keyid as number),
            mac_alg: policy.mac_alg as AoKeyEntry['mac_alg'],
            key_source: policy.key_source as AoKeyEntry['key_source'],
            role: 'preferred',
            maclen: policy.maclen,
            exclude_tcp_options: policy.exclude_tcp_options,
            position: undefined,
          },
        ]
      : tables.map((table, position) => ({
          ...table,
          maclen: table.maclen ?? policy.maclen,
          exclude_tcp_options: table.exclude_tcp_options ?? policy.exclude_tcp_options,
          position,
        }));
  // superRefine guarantees one preferred key; the fallback only satisfies the type checker.
  const preferred = keys.find((key) => key.role === 'preferred') ?? (keys[0] as AoKeyEntry);
  return {
    ...fields,
    keyid: policy.keyid ?? preferred.send_id,
    send_id: preferred.send_id,
    recv_id: preferred.recv_id,
    mac_alg: preferred.mac_alg,
    key_source: preferred.key_source,
    keys,
  };
});

export const SECTION_COUNT_MESSAGE = 'a config has exactly one of [initiator] or [terminator]';

const POLICY_ARRAY_MESSAGE = 'expected one or more [[ao_policy]] tables (double brackets)';

/**
 * The whole document. The mode is the section present; a document with none
 * or both fails here too, and load.ts reports the same problem with its own
 * wording when other fields are also broken.
 */
export const ConfigSchema = z
  .object({
    global: GlobalWithRules.default({}),
    initiator: InitiatorSchema.optional(),
    terminator: TerminatorSchema.optional(),
    ao_policy: z
      .array(AoPolicySchema, {
        errorMap: (issue, ctx) => ({
          message:
            issue.code === 'invalid_type' && issue.received === 'undefined'
              ? `missing; add at least one [[ao_policy]] table`
              : `${POLICY_ARRAY_MESSAGE}, got ${describeValue(ctx.data)}`,
        }),
      })
      .min(1, { message: 'is empty; add at least one [[ao_policy]] table' }),
  })
  .strict()
  .transform((document, ctx) => {
    const { initiator, terminator, global, ao_policy } = document;
    if (initiator !== undefined && terminator === undefined) {
      return { mode: 'initiator' as const, global, initiator, ao_policy };
    }
    if (terminator !== undefined && initiator === undefined) {
      return { mode: 'terminator' as const, global, terminator, ao_policy };
    }
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: SECTION_COUNT_MESSAGE, path: [] });
    return z.NEVER;
  });

/** Keys each table accepts, for "did you mean" hints on unknown keys. */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': ['global', 'initiator', 'terminator', 'ao_policy'],
  global: Object.keys(GlobalSchema.shape),
  initiator: Object.keys(InitiatorSchema.shape),
  terminator: Object.keys(TerminatorSchema.shape),
  ao_policy: Object.keys(AoPolicyFields.shape),
  'ao_policy.key': Object.keys(AoKeySchema.shape),
};

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The validated document before key resolution (z.infer of ConfigSchema). */
export type ParsedConfig = DeepReadonly<z.infer<typeof ConfigSchema>>;
export type GlobalSettings = DeepReadonly<z.infer<typeof GlobalSchema>>;
export type InitiatorSettings = DeepReadonly<z.infer<typeof InitiatorSchema>>;
export type TerminatorSettings = DeepReadonly<z.infer<typeof TerminatorSchema>>;
export type AoPolicy = DeepReadonly<z.infer<typeof AoPolicySchema>>;
export type MacAlgorithm = AoPolicy['mac_alg'];
export type LogFormat = GlobalSettings['log_format'];
export type LogLevel = GlobalSettings['log_level'];
