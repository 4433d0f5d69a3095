/**
 * Reading a parsed TOML document before it is known to be valid: the loader,
 * the relation checks and doctor all look at the [[ao_policy]] tables that are
 * valid on their own, alongside errors elsewhere in the file.
 */
import { AoPolicySchema, type AoPolicy } from './schema.js';

export interface IndexedPolicy {
  /** Position in the file: ao_policy[index]. */
  readonly index: number;
  readonly policy: AoPolicy;
}

export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The document's [[ao_policy]] entries as written, valid or not. */
export function rawPolicies(document: unknown): unknown[] {
  return isTable(document) && Array.isArray(document['ao_policy']) ? (document['ao_policy'] as unknown[]) : [];
}

/** Each [[ao_policy]] that passes the schema on its own, with its position. */
export function validPolicies(document: unknown): IndexedPolicy[] {
  return rawPolicies(document).flatMap((candidate, index) => {
    const result = AoPolicySchema.safeParse(candidate);
    return result.success ? [{ index, policy: result.data }] : [];
  });
}
