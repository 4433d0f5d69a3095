/**
 * Config loading: inspect the config (read, parse, validate, relate fields,
 * resolve every key, freeze) and throw if anything is wrong. Every problem
 * found is reported together, one per line, each naming its TOML path; the
 * caller prints them once and exits with status 2.
 */
import {
  inspectConfigFile,
  inspectConfigFileAsync,
  inspectConfigText,
  inspectDocument,
  wipeInspectedKeys,
  type ConfigInspection,
  type LoadOptions,
  type TextLoadOptions,
} from './inspect.js';
import { ConfigError } from './problems.js';
import { deepFreeze, type LoadedConfig } from './resolved.js';

export { MAX_CONFIG_BYTES } from './config-text.js';
export type { LoadOptions, TextLoadOptions } from './inspect.js';
export { ConfigError, formatPath, type ConfigProblem, type ConfigWarning } from './problems.js';
export {
  deepFreeze,
  type InitiatorConfig,
  type LoadedConfig,
  type ResolvedAoKey,
  type ResolvedAoPolicy,
  type SidecarConfig,
  type TerminatorConfig,
} from './resolved.js';

export function loadConfigFile(path: string, options: LoadOptions = {}): LoadedConfig {
  return loaded(inspectConfigFile(path, options));
}

/** loadConfigFile for a running sidecar: the config and every key file are read without blocking the event loop. */
export async function loadConfigFileAsync(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  return loaded(await inspectConfigFileAsync(path, options));
}

export function loadConfigText(text: string, options: TextLoadOptions): LoadedConfig {
  return loaded(inspectConfigText(text, options));
}

/** Validates a parsed TOML document; throws ConfigError listing every problem. */
export function validateConfig(document: unknown, options: TextLoadOptions): LoadedConfig {
  return loaded(inspectDocument(document, options));
}

function loaded(inspection: ConfigInspection): LoadedConfig {
  const { config, warnings } = inspection;
  if (config === undefined) {
    // No key of a config that will not run stays in memory.
    wipeInspectedKeys(inspection);
    throw new ConfigError(inspection.problems);
  }
  return deepFreeze({ config, warnings: [...warnings] });
}
