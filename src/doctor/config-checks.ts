/**
 * The config part of doctor: the config validates and each of its keys
 * resolves, from one inspection of the file. No message here contains key
 * material: key checks report lengths and the source's name only.
 */
import { resolve } from 'node:path';

import type { IndexedPolicy } from '../config/document.js';
import { inspectConfigFileAsync, wipeInspectedKeys, type ConfigInspection, type InspectedKey } from '../config/inspect.js';
import { formatKeySource, type KeySourceSpec } from '../config/keys.js';
import type { ConfigProblem, ConfigWarning } from '../config/problems.js';
import type { AoKeyEntry, MacAlgorithm, Mode, ParsedConfig } from '../config/schema.js';
import { oneLine } from './errno.js';
import type { CheckResult, DoctorDeps } from './types.js';

/** What the later checks need from the config file, as far as it could be parsed. */
export interface DoctorConfigInspection {
  readonly validity: CheckResult;
  /** The whole document, when it passes the schema (key sources parsed, not resolved). */
  readonly parsed: ParsedConfig | undefined;
  /** Each [[ao_policy]] that passes the schema on its own, with its position and what each of its keys resolved to. */
  readonly policies: readonly (IndexedPolicy & { readonly keys: readonly KeyFinding[] })[];
}

/** A key's length once resolved (the bytes are wiped), or the problem that stopped it resolving. */
interface KeyFinding {
  readonly entry: AoKeyEntry;
  readonly bytes: number | undefined;
  readonly problem: ConfigProblem | undefined;
}

/** Loader warnings that later checks report in their own words. */
const WARNINGS_COVERED_ELSEWHERE = new Set(['initiator.listen_plain', 'terminator.forward_plain']);

export async function inspectConfig(deps: DoctorDeps, configPath: string, mode: Mode | undefined): Promise<DoctorConfigInspection> {
  const id = 'config.valid';
  const title = 'Config validates';
  const options = mode === undefined ? { env: deps.env } : { mode, env: deps.env };
  let inspection: ConfigInspection;
  try {
    // Read once, through the loader's own reader: a FIFO or a device as the config is refused, never waited on.
    inspection = await inspectConfigFileAsync(resolve(configPath), options);
  } catch (error) {
    const validity: CheckResult = {
      id,
      title,
      status: 'fail',
      finding: `the config could not be checked: ${oneLine(error)}`,
      remedy: 'run `tcpao-proxy check-config --config FILE` for details',
    };
    return { validity, parsed: undefined, policies: [] };
  }
  // The doctor installs nothing: the key checks need only each key's length.
  const policies = inspection.policies.map((policy) => ({ ...policy, keys: policy.keys.map(lengthOnly) }));
  wipeInspectedKeys(inspection);
  return { validity: validityCheck(id, title, inspection), parsed: inspection.parsed, policies };
}

function lengthOnly(key: InspectedKey): KeyFinding {
  return { entry: key.entry, bytes: key.secret?.byteLength, problem: key.problem };
}

/** A warning as check-config prints it: code, TOML path, message. */
function warningText(warning: ConfigWarning): string {
  return `${warning.code}: ${warning.path}: ${warning.message}`;
}

function validityCheck(id: string, title: string, inspection: ConfigInspection): CheckResult {
  const { config, parsed } = inspection;
  if (config !== undefined) {
    const warnings = inspection.warnings.filter((warning) => !WARNINGS_COVERED_ELSEWHERE.has(warning.path));
    const shape = `valid ${config.mode} config, ${config.activePolicies.length} of ${config.ao_policy.length} ao_policy installed on this side`;
    return warnings.length === 0
      ? { id, title, status: 'pass', finding: shape }
      : {
          id,
          title,
          status: 'warn',
          finding: `${shape}; ${warningText(warnings[0] as ConfigWarning)}${warnings.length > 1 ? ` (and ${warnings.length - 1} more)` : ''}`,
          remedy: warnings.map(warningText).join('; '),
          detail: { warnings: warnings.map((warning) => ({ code: warning.code, path: warning.path, message: warning.message })) },
        };
  }
  // Unresolvable keys are the key checks' findings; the document itself may be fine.
  const structural = inspection.problems.filter((problem) => problem.code !== 'ERR_TCPAO_KEY_SOURCE');
  if (structural.length === 0 && parsed !== undefined) {
    return { id, title, status: 'pass', finding: `valid ${parsed.mode} config (its key sources are checked below)` };
  }
  const problems = structural.length === 0 ? inspection.problems : structural;
  const first = problems[0] as ConfigProblem;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  return {
    id,
    title,
    status: 'fail',
    finding: `${first.path}: ${first.message}${more}`,
    remedy: `fix the config: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
    detail: { problems: problems.map((problem) => ({ code: problem.code, path: problem.path, message: problem.message })) },
  };
}

/**
 * One check per key: each policy's key_source, or each of its [[ao_policy.key]]
 * tables, preferred or not (the sidecar resolves them all and exits 2 on any).
 * Present, readable, 1..80 bytes. The inspection wiped the key at once.
 */
export function checkKeySources(inspection: DoctorConfigInspection): CheckResult[] {
  const seenNames = new Set<string>();
  return inspection.policies.flatMap(({ index, policy, keys }) => {
    const base = seenNames.has(policy.name) ? `key.${policy.name}#${index}` : `key.${policy.name}`;
    seenNames.add(policy.name);
    return keys.map((outcome) => {
      const key = outcome.entry;
      const single = key.position === undefined;
      const id = single ? base : `${base}.key[${key.position}]`;
      const title = single
        ? `Key of ao_policy ${policy.name}`
        : `Key ${key.position} of ao_policy ${policy.name} (send_id ${key.send_id}, recv_id ${key.recv_id}, ${key.role})`;
      return checkKey(outcome, { id, title, index, policy: policy.name, position: key.position, spec: key.key_source, algorithm: key.mac_alg });
    });
  });
}

interface KeyUnderCheck {
  readonly id: string;
  readonly title: string;
  readonly index: number;
  readonly policy: string;
  readonly position: number | undefined;
  readonly spec: KeySourceSpec;
  readonly algorithm: MacAlgorithm;
}

function checkKey(outcome: KeyFinding, key: KeyUnderCheck): CheckResult {
  const { id, title, spec } = key;
  const source = formatKeySource(spec);
  const detail = {
    policy: key.policy,
    index: key.index,
    ...(key.position === undefined ? {} : { key: key.position }),
    source,
    algorithm: key.algorithm,
  };
  if (outcome.bytes !== undefined) {
    const length = outcome.bytes;
    return { id, title, status: 'pass', finding: `${length} bytes from ${source}`, detail: { ...detail, bytes: length } };
  }
  const message = outcome.problem?.message ?? `${source} cannot be resolved`;
  const { kind, ref, encoding } = spec;
  const keyShape = `a key of 1 to 80 bytes${encoding === 'raw' ? '' : `, ${encoding}-encoded`}`;
  const remedy =
    kind === 'env'
      ? `set ${ref} in the sidecar's environment (docker: -e ${ref} or an env file; never on the command line) to ${keyShape}`
      : `make ${ref} a regular file this user can read, holding ${keyShape}`;
  return { id, title, status: 'fail', finding: message, remedy, detail };
}

/** The algorithms a config uses, to tell a refused algorithm that matters from one that does not. */
export function algorithmsUsed(inspection: DoctorConfigInspection): ReadonlySet<string> {
  // Every key's, not only the preferred one's: an accept key the kernel refuses stops the sidecar too.
  return new Set(inspection.policies.flatMap(({ policy }) => policy.keys.map((key) => key.mac_alg)));
}
