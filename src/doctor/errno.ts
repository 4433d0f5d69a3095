import { errorCodeOf, TcpAoError } from '../errors.js';

/** The system error name behind an error (ENOENT, EADDRINUSE, ...), whether Node's or the addon's. */
export function errnoName(err: unknown): string | undefined {
  if (err instanceof TcpAoError) return err.sysCode;
  const code = errorCodeOf(err);
  return code !== undefined && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** A one-line description of an error for a finding; never includes a stack. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0];
}
