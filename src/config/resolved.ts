/** The shape of a loaded config: the validated document with every key's bytes, frozen. */
import { SecretKey } from './keys.js';
import type { AoKeyEntry, AoPolicy, ParsedConfig } from './schema.js';
import type { ConfigWarning } from './problems.js';

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

/** Freezes plain objects and arrays all the way down; a SecretKey is frozen as is. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  if (value instanceof SecretKey) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}
