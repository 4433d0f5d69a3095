import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { formatSums, sha256File, SUMS_FILE } from './checksums.js';
import type { Cosign } from './cosign.js';
import type { ImageTool } from './image-tool.js';
import { readImageList } from './image-list.js';
import {
  formatManifest,
  MANIFEST_FILE,
  MANIFEST_SCHEMA,
  NO_SIGNATURE_NOTE,
  SIGNATURE_FILE,
  type Manifest,
  type ManifestFile,
  type ManifestImage,
  type ManifestSignature,
} from './manifest.js';
import { packSidecar, sidecarSbom } from './npm-package.js';
import { README_FILE, renderReadme } from './readme.js';
import { formatProblem, verifyBundle } from './verify-bundle.js';
import { TcpAoError } from '../errors.js';

export const NATIVE_ADDON_NOTE =
  'compiled on the target by node-gyp at npm install (needs python3, make, g++ and Node headers via npm_config_nodedir)';

export interface PrepareOptions {
  readonly repoRoot: string;
  readonly outDir: string;
  readonly imageListPath: string;
  /** Replaces the registry of the image list (the names and tags stay pinned). */
  readonly sourceRegistry?: string | undefined;
  /** docker pull each pinned ref first (otherwise they must already be local). */
  readonly pull: boolean;
  /** cosign private key (path or KMS URI); the password comes from COSIGN_PASSWORD. */
  readonly cosignKey?: string | undefined;
  /** Run the package's lifecycle scripts (prepare = tsc) during npm pack. */
  readonly runPackScripts: boolean;
  readonly imageTool: ImageTool;
  readonly cosign: Cosign;
  readonly log: (line: string) => void;
  readonly now?: Date;
}

export interface PrepareResult {
  readonly outDir: string;
  readonly manifest: Manifest;
}

/** The compiled bundle tool (this directory) and its wrapper, copied into every bundle as tool/. */
const TOOL_JS_DIR = __dirname;
/** The modules outside this directory that the tool imports, relative to dist/src/. */
const TOOL_SHARED_JS = ['errors.js', 'cli/command.js'];
const TOOL_SCRIPT = join(__dirname, '..', '..', '..', 'scripts', 'offline-bundle');

function git(repoRoot: string, args: readonly string[]): Promise<string | null> {
  return new Promise((done) => {
    execFile('git', ['-C', repoRoot, ...args], { encoding: 'utf8' }, (err, stdout) => done(err === null ? stdout.trim() : null));
  });
}

async function sourceCommit(repoRoot: string): Promise<{ commit: string; dirty: boolean }> {
  const commit = await git(repoRoot, ['rev-parse', 'HEAD']);
  const status = await git(repoRoot, ['status', '--porcelain', '--untracked-files=no']);
  return { commit: commit ?? 'unknown (not a git checkout)', dirty: status !== null && status.length > 0 };
}

async function ensureFreshOutput(outDir: string): Promise<void> {
  try {
    const entries = await readdir(outDir);
    if (entries.length > 0) {
      throw new TcpAoError('ERR_TCPAO_BUNDLE_OUTPUT_EXISTS', `${outDir} already exists and is not empty; choose another --out or remove it`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new TcpAoError('ERR_TCPAO_BUNDLE_OUTPUT_EXISTS', `${outDir} exists and is not a directory; choose another --out`);
    }
    throw err;
  }
}

async function copyTool(stage: string): Promise<string[]> {
  const jsDir = join(stage, 'tool', 'dist', 'src', 'bundle');
  await mkdir(jsDir, { recursive: true });
  await mkdir(join(stage, 'tool', 'scripts'), { recursive: true });
  const copied: string[] = [];
  for (const name of (await readdir(TOOL_JS_DIR)).filter((n) => n.endsWith('.js')).sort()) {
    await copyFile(join(TOOL_JS_DIR, name), join(jsDir, name));
    copied.push(`tool/dist/src/bundle/${name}`);
  }
  for (const name of TOOL_SHARED_JS) {
    await mkdir(join(stage, 'tool', 'dist', 'src', dirname(name)), { recursive: true });
    await copyFile(join(__dirname, '..', name), join(stage, 'tool', 'dist', 'src', name));
    copied.push(`tool/dist/src/${name}`);
  }
  await copyFile(TOOL_SCRIPT, join(stage, 'tool', 'scripts', 'offline-bundle'));
  await chmod(join(stage, 'tool', 'scripts', 'offline-bundle'), 0o755);
  return [...copied, 'tool/scripts/offline-bundle'];
}

/**
 * Build a bundle on the connected side. Work happens in `<out>.partial` and is
 * renamed to `<out>` only after the finished bundle verifies, so a failed run
 * never leaves something that looks like a bundle.
 */
export async function prepareBundle(opts: PrepareOptions): Promise<PrepareResult> {
  const outDir = resolve(opts.outDir);
  const stage = `${outDir}.partial`;
  await ensureFreshOutput(outDir);
  const pkg = JSON.parse(await readFile(join(opts.repoRoot, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    dependencies?: Record<string, string>;
  };
  const images = readImageList(opts.imageListPath, opts.sourceRegistry);
  if (opts.cosignKey !== undefined && opts.cosign.locate() === null) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_COSIGN', '--cosign-key was given but cosign is not on PATH; install cosign 2.x or drop --cosign-key');
  }

  await rm(stage, { recursive: true, force: true });
  await mkdir(join(stage, 'images'), { recursive: true });
  await mkdir(join(stage, 'npm'), { recursive: true });
  await mkdir(join(stage, 'sbom'), { recursive: true });
  try {
    const manifestImages: ManifestImage[] = [];
    for (const image of images) {
      if (opts.pull) {
        opts.log(`pulling ${image.ref}`);
        await opts.imageTool.pull(image.ref);
      }
      const local = await opts.imageTool.inspect(image.ref);
      if (local === null) {
        throw new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_MISSING', `${image.ref} is not in the local image store; build it (make images) or pass --pull`);
      }
      const file = `images/${image.name}_${image.tag}.tar`;
      opts.log(`saving ${image.ref} (${local.id}) to ${file}`);
      await opts.imageTool.save(image.ref, join(stage, file));
      manifestImages.push({ name: image.name, role: image.role, ref: image.ref, tag: image.tag, imageId: local.id, repoDigests: [...local.repoDigests], file });
    }

    opts.log('packing the sidecar with npm pack');
    const packed = await packSidecar(opts.repoRoot, join(stage, 'npm'), opts.runPackScripts);
    const npmFile = `npm/${packed.fileName}`;
    opts.log(`writing the SBOM of ${npmFile}`);
    const runtimeDeps = Object.keys(pkg.dependencies ?? {});
    const sbomFile = `sbom/${packed.name}-${packed.version}.cdx.json`;
    await writeFile(join(stage, sbomFile), await sidecarSbom(packed.path, packed.name, runtimeDeps));

    const toolFiles = await copyTool(stage);
    const signature: ManifestSignature =
      opts.cosignKey === undefined
        ? { method: 'none', note: NO_SIGNATURE_NOTE }
        : { method: 'cosign-blob', signedFile: 'SHA256SUMS', signatureFile: SIGNATURE_FILE };
    const { commit, dirty } = await sourceCommit(opts.repoRoot);
    const createdAt = (opts.now ?? new Date()).toISOString();
    const npmPackage = { file: npmFile, name: packed.name, version: packed.version, bundledDependencies: [...packed.bundled], nativeAddon: NATIVE_ADDON_NOTE };
    const sbom = { file: sbomFile, format: 'CycloneDX JSON', describes: npmFile };
    await writeFile(
      join(stage, README_FILE),
      renderReadme({ name: pkg.name, version: pkg.version, commit: dirty ? `${commit} (with uncommitted changes)` : commit, createdAt, images: manifestImages, npmPackage, sbomFile, signature }),
    );

    const paths = [...manifestImages.map((i) => i.file), npmFile, sbomFile, README_FILE, ...toolFiles].sort();
    const files: ManifestFile[] = [];
    for (const path of paths) {
      const full = join(stage, path);
      files.push({ path, size: (await stat(full)).size, sha256: await sha256File(full) });
    }
    const manifest: Manifest = {
      schema: MANIFEST_SCHEMA,
      name: pkg.name,
      version: pkg.version,
      createdAt,
      source: { commit, dirty },
      images: manifestImages,
      npmPackage,
      sbom,
      signature,
      files,
    };
    await writeFile(join(stage, MANIFEST_FILE), formatManifest(manifest));
    const sums = [...files.map((f) => ({ path: f.path, sha256: f.sha256 })), { path: MANIFEST_FILE, sha256: await sha256File(join(stage, MANIFEST_FILE)) }];
    await writeFile(join(stage, SUMS_FILE), formatSums(sums));

    if (opts.cosignKey === undefined) {
      opts.log(`${NO_SIGNATURE_NOTE} (no --cosign-key given)`);
    } else {
      opts.log(`signing ${SUMS_FILE} with cosign`);
      await opts.cosign.signBlob(opts.cosignKey, join(stage, SUMS_FILE), join(stage, SIGNATURE_FILE));
    }

    const check = await verifyBundle(stage, { cosign: opts.cosign });
    if (check.problems.length > 0) {
      throw new TcpAoError('ERR_TCPAO_INTERNAL', `the new bundle does not verify: ${check.problems.map(formatProblem).join('; ')}`);
    }
    // rename(2) replaces an empty directory and fails on a non-empty one, so nothing of the operator's is lost.
    await rename(stage, outDir);
    return { outDir, manifest };
  } catch (err) {
    await rm(stage, { recursive: true, force: true });
    throw err;
  }
}
