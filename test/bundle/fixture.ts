import type { Test } from 'tap';
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  cpSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CosignCli, type Cosign } from '../../src/bundle/cosign.js';
import { readImageList } from '../../src/bundle/image-list.js';
import type { Manifest } from '../../src/bundle/manifest.js';
import { prepareBundle } from '../../src/bundle/prepare.js';
import { FakeImageTool } from './fake-image-tool.js';

/** The source tree: tests run from dist/test/bundle. */
export const REPO_ROOT = join(__dirname, '..', '..', '..');
export const IMAGE_LIST = join(REPO_ROOT, 'deploy', 'images', 'images.json');

export function scratch(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A cosign that is not installed: the real CLI class with an empty PATH. */
export function absentCosign(t: Test): Cosign {
  return new CosignCli('cosign', { PATH: scratch(t, 'tcpao-nocosign-') });
}

export interface PreparedFixture {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The connected side's image store the bundle was made from. */
  readonly source: FakeImageTool;
  readonly log: readonly string[];
}

/**
 * Run the real prepare (real npm pack of this checkout, real npm sbom, real
 * hashing) with the fake image store holding both pinned images. npm pack
 * skips lifecycle scripts because the test run has just compiled dist/.
 */
export async function prepareFixture(t: Test, opts: { cosign?: Cosign; cosignKey?: string } = {}): Promise<PreparedFixture> {
  const root = scratch(t, 'tcpao-bundle-');
  const source = new FakeImageTool();
  for (const image of readImageList(IMAGE_LIST)) source.add(image.ref);
  const log: string[] = [];
  const result = await prepareBundle({
    repoRoot: REPO_ROOT,
    outDir: join(root, 'bundle'),
    imageListPath: IMAGE_LIST,
    pull: false,
    cosignKey: opts.cosignKey,
    runPackScripts: false,
    imageTool: source,
    cosign: opts.cosign ?? absentCosign(t),
    log: (line) => log.push(line),
  });
  return { dir: result.outDir, manifest: result.manifest, source, log };
}

/** A fresh copy of a bundle to tamper with. */
export function copyBundle(t: Test, dir: string): string {
  const copy = join(scratch(t, 'tcpao-bundle-copy-'), 'bundle');
  cpSync(dir, copy, { recursive: true });
  return copy;
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A copy of a bundle whose files are hard links to the original: cheap for
 * image tarballs of hundreds of megabytes. Change files in it only through
 * replaceFile or flipByte, which give the changed file a new inode.
 */
export function linkedCopy(t: Test, dir: string): string {
  const copy = join(scratch(t, 'tcpao-bundle-link-'), 'bundle');
  function walk(rel: string): void {
    mkdirSync(join(copy, rel), { recursive: true });
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = join(rel, entry.name);
      if (entry.isDirectory()) walk(path);
      else linkSync(join(dir, path), join(copy, path));
    }
  }
  walk('');
  return copy;
}

/** Write a file as a new inode, so a hard-linked original stays as it was. */
export function replaceFile(path: string, data: Buffer | string): void {
  const next = `${path}.replacing`;
  writeFileSync(next, data);
  renameSync(next, path);
}

/** Flip one bit of the byte in the middle of a file (a new inode, as replaceFile). */
export function flipByte(path: string): void {
  const next = `${path}.flipping`;
  copyFileSync(path, next);
  const at = Math.floor(statSync(next).size / 2);
  const fd = openSync(next, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = (byte[0] as number) ^ 0x01;
    writeSync(fd, byte, 0, 1, at);
  } finally {
    closeSync(fd);
  }
  renameSync(next, path);
}

/**
 * After a file of a bundle copy was changed, rewrite the lists to match it, as
 * an attacker who can edit the bundle would: its SHA256SUMS line always, and
 * with `manifest` also its manifest.json entry and manifest.json's own line.
 * A 'sums'-only rewrite is caught by the cross-check of the two lists; a full
 * one passes the checksums and only a signature catches it.
 */
export function relist(copy: string, relPath: string, lists: 'sums' | 'sums-and-manifest'): void {
  const manifestPath = join(copy, 'manifest.json');
  const sumsPath = join(copy, 'SHA256SUMS');
  const data = readFileSync(join(copy, relPath));
  const fileSum = sha256(data);
  const manifestBefore = sha256(readFileSync(manifestPath));
  if (lists === 'sums-and-manifest') {
    const edited = readJson<Manifest>(manifestPath);
    const entry = edited.files.find((f) => f.path === relPath) as { size: number; sha256: string };
    entry.size = data.length;
    entry.sha256 = fileSum;
    replaceFile(manifestPath, `${JSON.stringify(edited, null, 2)}\n`);
  }
  const manifestAfter = sha256(readFileSync(manifestPath));
  const sums = readFileSync(sumsPath, 'utf8')
    .split('\n')
    .map((line) => (line.endsWith(`  ${relPath}`) ? `${fileSum}  ${relPath}` : line.replace(manifestBefore, manifestAfter)))
    .join('\n');
  replaceFile(sumsPath, sums);
}

/**
 * Replaces README.txt in a bundle copy and rewrites manifest.json and
 * SHA256SUMS to match: the checksums alone then pass, only a signature
 * catches it.
 */
export function rewriteReadmeConsistently(copy: string): void {
  replaceFile(join(copy, 'README.txt'), 'replaced instructions\n');
  relist(copy, 'README.txt', 'sums-and-manifest');
}
