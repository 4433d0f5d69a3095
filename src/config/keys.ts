// size: SecretKey and every reader of key bytes share one rule (no key byte outside secureBytes), checked best in one file.
/**
 * Key sources and the SecretKey holder. Key bytes live only inside a
 * SecretKey's private field; every way of printing one yields "[REDACTED]",
 * and reveal() is called only where the bytes are handed to the addon
 * (src/native/args.ts zeroes that copy once the addon has it).
 *
 * Every buffer that holds key bytes or their hex/base64 text comes from
 * secureBytes() (off the JS heap, so zeroing it leaves no copy behind) and is
 * zeroed when done. No key is ever a JS string: hex and base64 are decoded
 * from bytes, and an env key is moved out of the process environment by the
 * addon (takeEnvBytes) instead of being read through process.env, since JS
 * strings cannot be wiped.
 *
 * Nothing in this module puts a key source's *value* into a message: an error
 * names the source (env var name, file path) and what is wrong with it.
 */
import { isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';

import { hasCode } from '../errors.js';
import { secureBytes, takeEnvBytes } from '../native/index.js';
import { describeLength, looksLikeKeyMaterial } from './echo.js';
import { describeErrno, FileReadError, readRegularFile, readRegularFileSync, type FileReadFailure } from './read-file.js';

/** TCP_AO_MAXKEYLEN in include/uapi/linux/tcp.h. */
export const MAX_KEY_BYTES = 80;
/** A key file larger than this is refused before reading: no encoding of 80 bytes needs more. */
export const MAX_KEY_FILE_BYTES = 1_024;

const REDACTED = '[REDACTED]';

export class SecretKey {
  readonly #bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Copies `bytes` into memory of its own, off the JS heap (never Node's shared Buffer pool). */
  static fromBytes(bytes: Uint8Array): SecretKey {
    const own = secureBytes(bytes.length);
    own.set(bytes);
    return new SecretKey(own);
  }

  get byteLength(): number {
    return this.#bytes.length;
  }

  /** A fresh copy of the key bytes, for handing to the addon only; the caller zeroes it. */
  reveal(): Uint8Array {
    const copy = secureBytes(this.#bytes.length);
    copy.set(this.#bytes);
    return copy;
  }

  /** Overwrites the key bytes with zeros (after a reload replaced this key). */
  wipe(): void {
    this.#bytes.fill(0);
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export type KeySourceKind = 'env' | 'file';
export type KeyEncoding = 'raw' | 'hex' | 'base64';

export interface KeySourceSpec {
  readonly kind: KeySourceKind;
  readonly encoding: KeyEncoding;
  /** Environment variable name, or file path as written. */
  readonly ref: string;
}

export const KEY_SOURCE_FORMS =
  '"env:NAME", "file:PATH", "env-hex:NAME", "file-hex:PATH", "env-base64:NAME" or "file-base64:PATH"';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SCHEMES: ReadonlyMap<string, { readonly kind: KeySourceKind; readonly encoding: KeyEncoding }> = new Map([
  ['env', { kind: 'env', encoding: 'raw' }],
  ['file', { kind: 'file', encoding: 'raw' }],
  ['env-hex', { kind: 'env', encoding: 'hex' }],
  ['file-hex', { kind: 'file', encoding: 'hex' }],
  ['env-base64', { kind: 'env', encoding: 'base64' }],
  ['file-base64', { kind: 'file', encoding: 'base64' }],
]);

export type KeySourceParse = { readonly ok: true; readonly value: KeySourceSpec } | { readonly ok: false; readonly message: string };

/** Parses the key_source text; on failure the message never repeats the text. */
export function parseKeySource(text: string): KeySourceParse {
  const colon = text.indexOf(':');
  const scheme = colon < 0 ? undefined : SCHEMES.get(text.slice(0, colon));
  if (scheme === undefined) {
    return {
      ok: false,
      message: `not a key source; use ${KEY_SOURCE_FORMS} (the key itself never goes in the config)`,
    };
  }
  const ref = text.slice(colon + 1);
  // "env:" followed by the key itself instead of a variable's name; messages and logs name the ref, so refuse it.
  if (looksLikeKeyMaterial(ref)) {
    const what = scheme.kind === 'env' ? 'an environment variable name' : 'a file path';
    return {
      ok: false,
      message: `what follows the colon looks like key material (${describeLength(ref)} of hex or base64), not ${what}: name where the key is, never the key itself`,
    };
  }
  if (scheme.kind === 'env' && !ENV_NAME.test(ref)) {
    return { ok: false, message: 'needs an environment variable name after the colon (letters, digits and _, not starting with a digit)' };
  }
  if (scheme.kind === 'file' && ref === '') {
    return { ok: false, message: 'needs a file path after the colon' };
  }
  return { ok: true, value: { kind: scheme.kind, encoding: scheme.encoding, ref } };
}

export function formatKeySource(spec: KeySourceSpec): string {
  const scheme = spec.encoding === 'raw' ? spec.kind : `${spec.kind}-${spec.encoding}`;
  return `${scheme}:${spec.ref}`;
}

/** A key source that cannot be resolved; the message is safe to print. */
export class KeySourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeySourceError';
  }
}

export interface KeyResolveContext {
  readonly env: NodeJS.ProcessEnv;
  /** Relative file paths are resolved against this directory (the config file's). */
  readonly baseDir: string;
  /**
   * How a key file's bytes are fetched; throws FileReadError. By default a
   * bounded synchronous read; a reload passes the bytes it read asynchronously.
   */
  readonly readFile?: (path: string) => Buffer;
}

/** Reads and decodes one key. Throws KeySourceError with a printable message. */
export function resolveKey(spec: KeySourceSpec, context: KeyResolveContext): SecretKey {
  const path = spec.kind === 'file' ? resolveKeyPath(spec.ref, context.baseDir) : '';
  const label = spec.kind === 'env' ? `environment variable ${spec.ref}` : `key file ${path}`;
  const material = spec.kind === 'env' ? readEnvKey(spec.ref, context.env) : readFileKey(path, spec.encoding, context.readFile ?? readKeyFileSync);
  try {
    const bytes = decode(material, spec.encoding, label);
    try {
      checkLength(bytes.length, label, spec.encoding);
      return SecretKey.fromBytes(bytes);
    } finally {
      bytes.fill(0);
    }
  } finally {
    material.fill(0);
  }
}

/** A key file's bytes under the shared reader's rules (regular file, at most MAX_KEY_FILE_BYTES). */
export function readKeyFileSync(path: string): Buffer {
  return readRegularFileSync(path, MAX_KEY_FILE_BYTES, secureBytes);
}

/** The same as readKeyFileSync without blocking the event loop. */
export function readKeyFile(path: string): Promise<Buffer> {
  return readRegularFile(path, MAX_KEY_FILE_BYTES, secureBytes);
}

export function resolveKeyPath(ref: string, baseDir: string): string {
  return isAbsolute(ref) ? ref : resolve(baseDir, ref);
}

/**
 * Env key values moved out of this process's environment, by variable name:
 * the one copy the process keeps, so a reload finds the value again. Nothing
 * outside the process can change its environment, so this is the value a
 * reload would have read; a variable set again from inside (setenv) is taken
 * afresh.
 */
const takenEnv = new Map<string, Buffer>();

function readProcessEnv(name: string): Buffer | undefined {
  let taken: Uint8Array | undefined;
  try {
    taken = takeEnvBytes(name);
  } catch (err) {
    // Without the addon nothing can install a key; doctor and check still read it, as a string.
    if (!hasCode(err, 'ERR_TCPAO_ADDON_MISSING')) throw err;
    const value = process.env[name];
    if (value === undefined) return undefined;
    taken = secureBytes(Buffer.byteLength(value, 'utf8'));
    Buffer.from(taken.buffer, taken.byteOffset, taken.byteLength).write(value, 'utf8');
  }
  if (taken !== undefined) {
    takenEnv.get(name)?.fill(0);
    takenEnv.set(name, Buffer.from(taken.buffer, taken.byteOffset, taken.byteLength));
  }
  const stored = takenEnv.get(name);
  if (stored === undefined) return undefined;
  const copy = secureBytes(stored.length);
  stored.copy(copy);
  return copy;
}

function readEnvKey(name: string, env: NodeJS.ProcessEnv): Buffer {
  let bytes: Buffer | undefined;
  if (env === process.env) {
    bytes = readProcessEnv(name);
  } else {
    // A caller's own environment object (tests, doctor fakes): its values are strings already.
    const value = env[name];
    if (value !== undefined) {
      bytes = secureBytes(Buffer.byteLength(value, 'utf8'));
      bytes.write(value, 'utf8');
    }
  }
  if (bytes === undefined) {
    throw new KeySourceError(`environment variable ${name} is not set; export it before starting (keys never go on the command line)`);
  }
  if (bytes.length === 0) throw new KeySourceError(`environment variable ${name} is set but empty`);
  return bytes;
}

function readFileKey(path: string, encoding: KeyEncoding, read: (path: string) => Buffer): Buffer {
  let bytes: Buffer;
  try {
    bytes = read(path);
  } catch (err) {
    if (err instanceof FileReadError) throw new KeySourceError(`key file ${path} ${describeReadFailure(err.failure)}`);
    throw err;
  }
  try {
    checkTextArtifacts(bytes, encoding, `key file ${path}`);
  } catch (err) {
    bytes.fill(0);
    throw err;
  }
  // Raw files lose exactly one trailing newline, the one editors and `echo` add.
  if (encoding !== 'raw' || bytes.length === 0 || bytes[bytes.length - 1] !== 0x0a) return bytes;
  const content = secureBytes(bytes.length - 1);
  bytes.copy(content, 0, 0, content.length);
  bytes.fill(0);
  return content;
}

function describeReadFailure(failure: FileReadFailure): string {
  switch (failure.reason) {
    case 'open':
      return `cannot be opened: ${describeErrno(failure.code)}`;
    case 'not-regular':
      return failure.kind === 'directory'
        ? 'is a directory, not a file'
        : `is a ${failure.kind}, not a regular file; keys are read only from regular files (a FIFO or device could block or never end)`;
    case 'too-large':
      return failure.size === undefined
        ? `is too large to hold a key of at most ${MAX_KEY_BYTES} bytes`
        : `is ${failure.size} bytes, too large to hold a key of at most ${MAX_KEY_BYTES} bytes`;
    case 'read':
      return `cannot be read: ${describeErrno(failure.code)}`;
  }
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Refuses what a text editor leaves behind and the peer's copy of the key
 * probably lacks: a byte order mark, and a raw key ending in CRLF (only the
 * \n would be dropped, so the \r would silently become part of the key).
 */
function checkTextArtifacts(bytes: Buffer, encoding: KeyEncoding, label: string): void {
  if (bytes.subarray(0, UTF8_BOM.length).equals(UTF8_BOM)) {
    throw new KeySourceError(
      `${label} starts with a UTF-8 byte order mark (EF BB BF), which would be read as part of the key; ` +
        'save it without a BOM (e.g. `sed -i "1s/^\\xEF\\xBB\\xBF//" FILE`)',
    );
  }
  const last = bytes.length - 1;
  if (encoding === 'raw' && last >= 1 && bytes[last] === 0x0a && bytes[last - 1] === 0x0d) {
    throw new KeySourceError(
      `${label} ends with a Windows line ending (CRLF): only the \\n is dropped, so the \\r would become part of the key ` +
        "and differ from the peer's; convert it with `dos2unix FILE`, or use file-hex: or file-base64:",
    );
  }
}

const ASCII_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const EQUALS = 0x3d;

function trimAscii(bytes: Buffer): Buffer {
  let start = 0;
  let end = bytes.length;
  while (start < end && ASCII_SPACE.has(bytes[start] as number)) start++;
  while (end > start && ASCII_SPACE.has(bytes[end - 1] as number)) end--;
  return bytes.subarray(start, end);
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** The value of a base64 or base64url character, or -1. */
function base64Digit(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c === 0x2b || c === 0x2d) return 62;
  if (c === 0x2f || c === 0x5f) return 63;
  return -1;
}

function decodeHex(text: Buffer, label: string): Buffer {
  const notHex = () => new KeySourceError(`${label} is not valid hex: expected an even number of digits 0-9, a-f and nothing else`);
  if (text.length % 2 !== 0) throw notHex();
  const bytes = secureBytes(text.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    const high = hexDigit(text[2 * i] as number);
    const low = hexDigit(text[2 * i + 1] as number);
    if (high < 0 || low < 0) {
      bytes.fill(0);
      throw notHex();
    }
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

function decodeBase64(text: Buffer, label: string): Buffer {
  let end = text.length;
  for (let pad = 0; pad < 2 && end > 0 && text[end - 1] === EQUALS; pad++) end--;
  if (end === 0 || end % 4 === 1) throw new KeySourceError(`${label} is not valid base64`);
  for (let i = 0; i < end; i++) {
    if (base64Digit(text[i] as number) < 0) throw new KeySourceError(`${label} is not valid base64`);
  }
  // Leftover bits in the last character must be zero, as every encoder writes them;
  // anything else is a truncated or hand-edited value.
  const leftoverBits = [0, 0, 4, 2][end % 4] as number;
  if ((base64Digit(text[end - 1] as number) & ((1 << leftoverBits) - 1)) !== 0) {
    throw new KeySourceError(`${label} is not valid base64 (its last character carries stray bits)`);
  }
  const bytes = secureBytes(Math.floor((end * 3) / 4));
  let bits = 0;
  let pending = 0;
  let out = 0;
  for (let i = 0; i < end; i++) {
    pending = ((pending << 6) | base64Digit(text[i] as number)) & 0xfff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[out++] = (pending >> bits) & 0xff;
    }
  }
  return bytes;
}

function decode(material: Buffer, encoding: KeyEncoding, label: string): Buffer {
  if (encoding === 'raw') {
    if (material.length === 0) throw new KeySourceError(`${label} is empty`);
    const copy = secureBytes(material.length);
    material.copy(copy);
    return copy;
  }
  const text = trimAscii(material);
  if (text.length === 0) throw new KeySourceError(`${label} is empty`);
  return encoding === 'hex' ? decodeHex(text, label) : decodeBase64(text, label);
}

function checkLength(length: number, label: string, encoding: KeyEncoding): void {
  if (length === 0) throw new KeySourceError(`${label} is empty`);
  if (length > MAX_KEY_BYTES) {
    const what = encoding === 'raw' ? `${length} bytes` : `${length} bytes once decoded from ${encoding}`;
    throw new KeySourceError(`${label} holds ${what}; a TCP-AO key is 1 to ${MAX_KEY_BYTES} bytes`);
  }
}
