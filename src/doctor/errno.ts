import { TcpAoError } from '../errors.js';

/** The system error name behind an error (ENOENT, EADDRINUSE, ...), whether Node's or the addon's. */
export function errnoName(err: unknown): string | undefined {
  if (err instanceof TcpAoError) return err.sysCode;
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
  }
  return undefined;
}

/** A one-line description of an error for a finding; never includes a stack. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0];
}
