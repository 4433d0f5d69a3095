import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSums, sha256File, SUMS_FILE } from './checksums.js';
import type { ImageTool } from './image-tool.js';
import { imageRef } from './image-list.js';
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest.js';
import type { Problem } from './verify-bundle.js';
import { TcpAoError } from '../errors.js';

export type ImageState = 'ok' | 'missing' | 'digest-mismatch' | 'error';

export interface ImageReadiness {
  readonly ref: string;
  readonly expectedId: string;
  readonly localId: string | null;
  readonly state: ImageState;
}

export interface Readiness {
  readonly ready: boolean;
  readonly bundle: { readonly name: string; readonly version: string; readonly commit: string } | null;
  readonly images: readonly ImageReadiness[];
  readonly problems: readonly Problem[];
}

async function trustedManifest(dir: string): Promise<Manifest> {
  let sumsText: string;
  let manifestText: string;
  try {
    sumsText = await readFile(join(dir, SUMS_FILE), 'utf8');
  } catch (err) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_FILE_MISSING', `${SUMS_FILE} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  try {
    manifestText = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  } catch (err) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_FILE_MISSING', `${MANIFEST_FILE} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  const listed = parseSums(sumsText).find((e) => e.path === MANIFEST_FILE);
  if (listed === undefined) throw new TcpAoError('ERR_TCPAO_BUNDLE_LISTS_DISAGREE', `${SUMS_FILE} does not cover ${MANIFEST_FILE}`);
  const actual = await sha256File(join(dir, MANIFEST_FILE));
  if (actual !== listed.sha256) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH', `${MANIFEST_FILE} differs from its ${SUMS_FILE} entry; run load to see every problem`);
  }
  return parseManifest(manifestText);
}

/**
 * Is every image the manifest names in the local store at the manifest's
 * image ID? With a registry prefix, the retagged references are checked too.
 * The manifest is trusted only when it matches its SHA256SUMS entry.
 */
export async function checkReadiness(dir: string, imageTool: ImageTool, registry?: string): Promise<Readiness> {
  let manifest: Manifest;
  try {
    manifest = await trustedManifest(dir);
  } catch (err) {
    if (!(err instanceof TcpAoError)) throw err;
    return { ready: false, bundle: null, images: [], problems: [{ code: err.code, subject: MANIFEST_FILE, message: err.message }] };
  }
  const images: ImageReadiness[] = [];
  const problems: Problem[] = [];
  for (const image of manifest.images) {
    const refs = registry === undefined ? [image.ref] : [image.ref, imageRef(registry, image.name, image.tag)];
    for (const ref of refs) {
      try {
        const local = await imageTool.inspect(ref);
        if (local === null) {
          images.push({ ref, expectedId: image.imageId, localId: null, state: 'missing' });
          problems.push({ code: 'ERR_TCPAO_BUNDLE_IMAGE_MISSING', subject: ref, message: 'not in the local image store; run load' });
        } else if (local.id !== image.imageId) {
          images.push({ ref, expectedId: image.imageId, localId: local.id, state: 'digest-mismatch' });
          problems.push({ code: 'ERR_TCPAO_BUNDLE_IMAGE_DIGEST', subject: ref, message: `local image ID is ${local.id}, manifest says ${image.imageId}` });
        } else {
          images.push({ ref, expectedId: image.imageId, localId: local.id, state: 'ok' });
        }
      } catch (err) {
        images.push({ ref, expectedId: image.imageId, localId: null, state: 'error' });
        problems.push({
          code: err instanceof TcpAoError ? err.code : 'ERR_TCPAO_INTERNAL',
          subject: ref,
          message: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }
  return {
    ready: problems.length === 0,
    bundle: { name: manifest.name, version: manifest.version, commit: manifest.source.commit },
    images,
    problems,
  };
}
