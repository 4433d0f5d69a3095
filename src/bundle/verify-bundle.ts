import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cosign, SignatureStatus } from './cosign.js';
import { parseSums, sha256File, SUMS_FILE, type SumEntry } from './checksums.js';
import { MANIFEST_FILE, NO_SIGNATURE_NOTE, parseManifest, type Manifest } from './manifest.js';
import { TcpAoError, type ErrorCode } from '../errors.js';

/** One reason a bundle is refused (or an image not ready): printed as one line. */
export interface Problem {
  readonly code: ErrorCode;
  /** The file or image the problem is about. */
  readonly subject: string;
  readonly message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.code} ${p.subject}: ${p.message}`;
}

export interface BundleVerification {
  readonly problems: readonly Problem[];
  /** Set only when manifest.json parsed and validated. */
  readonly manifest: Manifest | null;
  readonly signature: SignatureStatus;
}

export interface VerifyOptions {
  readonly cosign: Cosign;
  /** Public key (path or KMS URI) for cosign verify-blob. */
  readonly cosignKey?: string | undefined;
  /** Refuse the bundle unless its signature is present and verifies. */
  readonly requireSignature?: boolean | undefined;
}

/** Every regular file under dir, as '/'-separated relative paths; anything else is a problem. */
async function listBundle(dir: string, problems: Problem[]): Promise<Set<string>> {
  const found = new Set<string>();
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(rel === '' ? dir : join(dir, rel), { withFileTypes: true });
    for (const entry of entries) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const info = await lstat(join(dir, path));
      if (info.isDirectory()) await walk(path);
      else if (info.isFile()) found.add(path);
      else problems.push({ code: 'ERR_TCPAO_BUNDLE_FILE_TYPE', subject: path, message: 'not a regular file (symlink, device or socket); a bundle holds plain files only' });
    }
  }
  await walk('');
  return found;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function short(hex: string): string {
  return hex.slice(0, 16);
}

/**
 * Check a bundle directory completely before anything in it is used:
 *  - SHA256SUMS and manifest.json parse, and SHA256SUMS covers manifest.json;
 *  - every file SHA256SUMS lists exists and has that sha256;
 *  - manifest.json lists exactly the same files with the same sha256, and the sizes match;
 *  - no other file is present;
 *  - the cosign signature over SHA256SUMS verifies when a key is given.
 * Cross-checking both lists means an edit to one of them alone is refused.
 * All problems are collected, one per file and kind.
 */
export async function verifyBundle(dir: string, options: VerifyOptions): Promise<BundleVerification> {
  const problems: Problem[] = [];
  const present = await listBundle(dir, problems);

  const sumsText = await readOptional(join(dir, SUMS_FILE));
  let sums: SumEntry[] | null = null;
  if (sumsText === null) {
    problems.push({ code: 'ERR_TCPAO_BUNDLE_FILE_MISSING', subject: SUMS_FILE, message: 'the checksum list is missing; the bundle cannot be verified' });
  } else {
    try {
      sums = parseSums(sumsText);
    } catch (err) {
      if (!(err instanceof TcpAoError)) throw err;
      problems.push({ code: err.code, subject: SUMS_FILE, message: err.message });
    }
  }

  const manifestText = await readOptional(join(dir, MANIFEST_FILE));
  let manifest: Manifest | null = null;
  if (manifestText === null) {
    problems.push({ code: 'ERR_TCPAO_BUNDLE_FILE_MISSING', subject: MANIFEST_FILE, message: 'the manifest is missing' });
  } else {
    try {
      manifest = parseManifest(manifestText);
    } catch (err) {
      if (!(err instanceof TcpAoError)) throw err;
      problems.push({ code: err.code, subject: MANIFEST_FILE, message: err.message });
    }
  }

  const expected = new Set<string>([SUMS_FILE]);
  const sumsByPath = new Map<string, string>();
  if (sums !== null) {
    for (const entry of sums) {
      expected.add(entry.path);
      sumsByPath.set(entry.path, entry.sha256);
    }
    if (!sumsByPath.has(MANIFEST_FILE)) {
      problems.push({ code: 'ERR_TCPAO_BUNDLE_LISTS_DISAGREE', subject: MANIFEST_FILE, message: `${SUMS_FILE} does not cover the manifest` });
    }
  }
  if (manifest !== null && manifest.signature.method === 'cosign-blob') expected.add(manifest.signature.signatureFile);

  // Files SHA256SUMS names: present, and with the listed content.
  const actualSha = new Map<string, string>();
  for (const [path, listed] of sumsByPath) {
    if (!present.has(path)) {
      problems.push({ code: 'ERR_TCPAO_BUNDLE_FILE_MISSING', subject: path, message: `listed in ${SUMS_FILE} but not in the bundle` });
      continue;
    }
    const actual = await sha256File(join(dir, path));
    actualSha.set(path, actual);
    if (actual !== listed) {
      problems.push({ code: 'ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH', subject: path, message: `sha256 is ${short(actual)}…, ${SUMS_FILE} says ${short(listed)}…` });
    }
  }

  // Without a usable SHA256SUMS every file would look extra; the SHA256SUMS problem says enough.
  for (const path of sums === null ? [] : [...present].sort()) {
    if (!expected.has(path)) {
      problems.push({ code: 'ERR_TCPAO_BUNDLE_FILE_EXTRA', subject: path, message: `not named by ${SUMS_FILE} or ${MANIFEST_FILE}; remove it or use an untouched copy of the bundle` });
    }
  }
  if (manifest !== null && manifest.signature.method === 'cosign-blob' && !present.has(manifest.signature.signatureFile)) {
    problems.push({ code: 'ERR_TCPAO_BUNDLE_FILE_MISSING', subject: manifest.signature.signatureFile, message: `${MANIFEST_FILE} says the bundle is signed but the signature file is absent` });
  }

  // The manifest's own list must agree with SHA256SUMS entry by entry.
  if (manifest !== null && sums !== null) {
    const manifestPaths = new Set<string>();
    for (const file of manifest.files) {
      manifestPaths.add(file.path);
      const listed = sumsByPath.get(file.path);
      if (listed === undefined) {
        problems.push({ code: 'ERR_TCPAO_BUNDLE_LISTS_DISAGREE', subject: file.path, message: `in ${MANIFEST_FILE} but not in ${SUMS_FILE}` });
      } else if (listed !== file.sha256) {
        problems.push({ code: 'ERR_TCPAO_BUNDLE_LISTS_DISAGREE', subject: file.path, message: `${MANIFEST_FILE} says sha256 ${short(file.sha256)}…, ${SUMS_FILE} says ${short(listed)}…` });
      }
      if (present.has(file.path)) {
        const { size } = await lstat(join(dir, file.path));
        if (size !== file.size) {
          problems.push({ code: 'ERR_TCPAO_BUNDLE_SIZE_MISMATCH', subject: file.path, message: `${size} bytes, ${MANIFEST_FILE} says ${file.size}` });
        }
      }
    }
    for (const path of sumsByPath.keys()) {
      if (path !== MANIFEST_FILE && !manifestPaths.has(path)) {
        problems.push({ code: 'ERR_TCPAO_BUNDLE_LISTS_DISAGREE', subject: path, message: `in ${SUMS_FILE} but not in ${MANIFEST_FILE}` });
      }
    }
  }

  const signature = await checkSignature(dir, manifest, options, problems);
  return { problems, manifest, signature };
}

async function checkSignature(dir: string, manifest: Manifest | null, options: VerifyOptions, problems: Problem[]): Promise<SignatureStatus> {
  const wantCheck = options.cosignKey !== undefined || options.requireSignature === true;
  if (manifest === null) return { state: 'unchecked', detail: 'signature not checked: the manifest is unusable' };

  if (manifest.signature.method === 'none') {
    if (wantCheck) {
      problems.push({ code: 'ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED', subject: SUMS_FILE, message: 'a signature check was asked for, but this bundle is not signed' });
    }
    return { state: 'none', detail: NO_SIGNATURE_NOTE };
  }

  const sigFile = manifest.signature.signatureFile;
  const unchecked = (why: string): SignatureStatus => {
    if (options.requireSignature === true) {
      problems.push({ code: 'ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED', subject: sigFile, message: `--require-signature was given but ${why}` });
    }
    return { state: 'unchecked', detail: `signature present but NOT checked: ${why}; relying on checksums only` };
  };
  if (options.cosignKey === undefined) return unchecked('no --cosign-key was given');
  if (options.cosign.locate() === null) {
    problems.push({ code: 'ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED', subject: sigFile, message: '--cosign-key was given but cosign is not on PATH' });
    return { state: 'unchecked', detail: 'signature present but NOT checked: cosign is not on PATH' };
  }
  const result = await options.cosign.verifyBlob(options.cosignKey, join(dir, SUMS_FILE), join(dir, sigFile));
  if (!result.ok) {
    const reason = result.output.split('\n').pop() ?? '';
    problems.push({ code: 'ERR_TCPAO_BUNDLE_SIGNATURE_INVALID', subject: sigFile, message: `cosign verify-blob rejected the signature over ${SUMS_FILE}: ${reason}` });
    return { state: 'invalid', detail: `signature INVALID: ${reason}` };
  }
  return { state: 'verified', detail: `signature verified by cosign with ${options.cosignKey}` };
}
