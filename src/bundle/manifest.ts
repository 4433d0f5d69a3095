import { isSafeBundlePath, isSha256Hex } from './checksums.js';
import { TcpAoError } from '../errors.js';

/*
 * The bundle tool must run at the receiving site from the bundle itself, with
 * Node and nothing else, so this validator is hand-written instead of zod.
 */

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_SCHEMA = 'tcpao-proxy-offline-bundle/1';
export const SIGNATURE_FILE = 'SHA256SUMS.sig';
export const NO_SIGNATURE_NOTE = 'signature: none, checksums only';

export interface ManifestFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export interface ManifestImage {
  readonly name: string;
  readonly role: string;
  /** The pinned reference the image was saved under, e.g. ghcr.io/org/name:0.1.0. */
  readonly ref: string;
  readonly tag: string;
  /** The image ID (sha256 of its config). It survives docker save and docker load unchanged. */
  readonly imageId: string;
  /** Registry manifest digests known on the connected side (informational; they change on re-push). */
  readonly repoDigests: readonly string[];
  readonly file: string;
}

export interface ManifestNpmPackage {
  readonly file: string;
  readonly name: string;
  readonly version: string;
  readonly bundledDependencies: readonly string[];
  readonly nativeAddon: string;
}

export interface ManifestSbom {
  readonly file: string;
  readonly format: string;
  readonly describes: string;
}

export type ManifestSignature =
  | { readonly method: 'none'; readonly note: string }
  | { readonly method: 'cosign-blob'; readonly signedFile: 'SHA256SUMS'; readonly signatureFile: string };

export interface Manifest {
  readonly schema: typeof MANIFEST_SCHEMA;
  readonly name: string;
  readonly version: string;
  readonly createdAt: string;
  readonly source: { readonly commit: string; readonly dirty: boolean };
  readonly images: readonly ManifestImage[];
  readonly npmPackage: ManifestNpmPackage;
  readonly sbom: ManifestSbom;
  readonly signature: ManifestSignature;
  /** Every file in the bundle except manifest.json, SHA256SUMS and the signature. */
  readonly files: readonly ManifestFile[];
}

const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

class ManifestChecker {
  readonly issues: string[] = [];

  object(value: unknown, where: string): Record<string, unknown> {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    this.issues.push(`${where} must be an object`);
    return {};
  }

  array(value: unknown, where: string): unknown[] {
    if (Array.isArray(value)) return value;
    this.issues.push(`${where} must be an array`);
    return [];
  }

  string(value: unknown, where: string, pattern?: RegExp): string {
    if (typeof value === 'string' && value.length > 0 && (pattern === undefined || pattern.test(value))) return value;
    this.issues.push(`${where} must be a ${pattern === undefined ? 'non-empty string' : `string matching ${pattern}`}`);
    return '';
  }

  path(value: unknown, where: string): string {
    if (isSafeBundlePath(value)) return value;
    this.issues.push(`${where} must be a plain relative path`);
    return '';
  }
}

/**
 * Check the parsed manifest.json against the schema. Returns the typed
 * manifest, or throws ERR_TCPAO_BUNDLE_MANIFEST_INVALID listing each issue.
 */
export function validateManifest(raw: unknown): Manifest {
  const c = new ManifestChecker();
  const top = c.object(raw, 'manifest');
  if (top.schema !== MANIFEST_SCHEMA) c.issues.push(`schema must be "${MANIFEST_SCHEMA}"`);
  c.string(top.name, 'name');
  c.string(top.version, 'version');
  const createdAt = c.string(top.createdAt, 'createdAt');
  if (createdAt !== '' && Number.isNaN(Date.parse(createdAt))) c.issues.push('createdAt must be an ISO 8601 time');
  const source = c.object(top.source, 'source');
  c.string(source.commit, 'source.commit');
  if (typeof source.dirty !== 'boolean') c.issues.push('source.dirty must be true or false');

  const files = c.array(top.files, 'files');
  const filePaths = new Set<string>();
  files.forEach((entry, i) => {
    const f = c.object(entry, `files[${i}]`);
    const path = c.path(f.path, `files[${i}].path`);
    if (!Number.isSafeInteger(f.size) || (f.size as number) < 0) c.issues.push(`files[${i}].size must be a byte count`);
    if (!isSha256Hex(f.sha256)) c.issues.push(`files[${i}].sha256 must be 64 lowercase hex digits`);
    if (filePaths.has(path)) c.issues.push(`files[${i}]: ${path} is listed twice`);
    filePaths.add(path);
  });
  const mustBeListed = (path: string, where: string): void => {
    if (path !== '' && !filePaths.has(path)) c.issues.push(`${where} (${path}) is not in files`);
  };

  c.array(top.images, 'images').forEach((entry, i) => {
    const img = c.object(entry, `images[${i}]`);
    c.string(img.name, `images[${i}].name`);
    c.string(img.role, `images[${i}].role`);
    c.string(img.ref, `images[${i}].ref`);
    c.string(img.tag, `images[${i}].tag`);
    c.string(img.imageId, `images[${i}].imageId`, IMAGE_ID);
    c.array(img.repoDigests, `images[${i}].repoDigests`).forEach((d, j) => c.string(d, `images[${i}].repoDigests[${j}]`));
    mustBeListed(c.path(img.file, `images[${i}].file`), `images[${i}].file`);
  });

  const npm = c.object(top.npmPackage, 'npmPackage');
  mustBeListed(c.path(npm.file, 'npmPackage.file'), 'npmPackage.file');
  c.string(npm.name, 'npmPackage.name');
  c.string(npm.version, 'npmPackage.version');
  c.array(npm.bundledDependencies, 'npmPackage.bundledDependencies').forEach((d, j) => c.string(d, `npmPackage.bundledDependencies[${j}]`));
  c.string(npm.nativeAddon, 'npmPackage.nativeAddon');

  const sbom = c.object(top.sbom, 'sbom');
  mustBeListed(c.path(sbom.file, 'sbom.file'), 'sbom.file');
  c.string(sbom.format, 'sbom.format');
  c.string(sbom.describes, 'sbom.describes');

  const sig = c.object(top.signature, 'signature');
  if (sig.method === 'none') {
    c.string(sig.note, 'signature.note');
  } else if (sig.method === 'cosign-blob') {
    if (sig.signedFile !== 'SHA256SUMS') c.issues.push('signature.signedFile must be "SHA256SUMS"');
    const sigFile = c.path(sig.signatureFile, 'signature.signatureFile');
    if (filePaths.has(sigFile)) c.issues.push('signature.signatureFile must not be in files (it signs SHA256SUMS, which covers them)');
  } else {
    c.issues.push('signature.method must be "none" or "cosign-blob"');
  }

  if (c.issues.length > 0) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_MANIFEST_INVALID', `${MANIFEST_FILE}: ${c.issues.join('; ')}`, {
      detail: { issues: c.issues },
    });
  }
  return raw as Manifest;
}

export function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_MANIFEST_INVALID', `${MANIFEST_FILE}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return validateManifest(raw);
}

export function formatManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
