/**
 * The config file's text under the loader's rules: a regular file of at most
 * MAX_CONFIG_BYTES, UTF-8 without a byte order mark, then parsed as TOML. Each
 * failure is the one coded problem that stops the file being read.
 */
import TOML from '@iarna/toml';

import { ConfigError, syntaxProblem } from './problems.js';
import { describeErrno, FileReadError, readRegularFile, readRegularFileSync, type FileReadFailure } from './read-file.js';

/** A config file larger than this is certainly not a sidecar config. */
export const MAX_CONFIG_BYTES = 1_048_576;

const UTF8_BOM = '\uFEFF';

/** The config file's text, read synchronously (the command line and startup). */
export function readConfigTextSync(path: string, absolute: string): string {
  return configText(path, () => readRegularFileSync(absolute, MAX_CONFIG_BYTES));
}

/** The config file's text under the loader's rules, without blocking; throws the ConfigError loadConfigFile would. */
export async function readConfigText(path: string, absolute: string): Promise<string> {
  const bytes = await readOrFailure(() => readRegularFile(absolute, MAX_CONFIG_BYTES));
  return configText(path, () => {
    if (bytes instanceof FileReadError) throw bytes;
    return bytes;
  });
}

export async function readOrFailure(read: () => Promise<Buffer>): Promise<Buffer | FileReadError> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof FileReadError) return err;
    throw err;
  }
}

export function parseToml(text: string, source: string): unknown {
  try {
    return TOML.parse(text);
  } catch (err) {
    throw new ConfigError([syntaxProblem(source, err)]);
  }
}

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
