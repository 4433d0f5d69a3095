import type { Test } from 'tap';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
 * Replaces README.txt in a bundle copy and rewrites manifest.json and
 * SHA256SUMS to match, as an attacker who can edit every file would: the
 * checksums alone then pass, only a signature catches it.
 */
export function rewriteReadmeConsistently(copy: string): void {
  const readme = join(copy, 'README.txt');
  const manifestPath = join(copy, 'manifest.json');
  const sumsPath = join(copy, 'SHA256SUMS');
  const readmeBefore = sha256(readFileSync(readme));
  const manifestBefore = sha256(readFileSync(manifestPath));
  writeFileSync(readme, 'replaced instructions\n');
  const edited = readJson<Manifest>(manifestPath);
  const entry = edited.files.find((f) => f.path === 'README.txt') as { size: number; sha256: string };
  entry.size = readFileSync(readme).length;
  entry.sha256 = sha256(readFileSync(readme));
  writeFileSync(manifestPath, `${JSON.stringify(edited, null, 2)}\n`);
  const sums = readFileSync(sumsPath, 'utf8').replace(readmeBefore, entry.sha256).replace(manifestBefore, sha256(readFileSync(manifestPath)));
  writeFileSync(sumsPath, sums);
}
