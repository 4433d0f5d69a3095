/**
 * tcpao-proxy as a program: its name, its version line and how its error
 * lines read. Subcommands import it from here, not from cli.ts, which imports
 * them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { KEY_ADVICE, type Program } from './command.js';

export const PROGRAM = 'tcpao-proxy';

/** tcpao-proxy's error lines; an error that is no TcpAoError is a bug. */
export const TCPAO_PROXY: Program = {
  name: PROGRAM,
  unexpectedText: (message) => `unexpected error: ${message}; this is a bug (set log_level = "debug" for the stack)`,
  keyAdvice: KEY_ADVICE,
};

export function readVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function versionLine(): string {
  return `${PROGRAM} ${readVersion()} (node ${process.version}, ${process.platform} ${process.arch})\n`;
}
