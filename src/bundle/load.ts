import { join } from 'node:path';
import type { Cosign, SignatureStatus } from './cosign.js';
import type { ImageTool } from './image-tool.js';
import { imageRef } from './image-list.js';
import { verifyBundle, type Problem } from './verify-bundle.js';
import { TcpAoError } from '../errors.js';

export interface LoadOptions {
  readonly imageTool: ImageTool;
  readonly cosign: Cosign;
  readonly cosignKey?: string | undefined;
  readonly requireSignature?: boolean | undefined;
  /** Internal registry prefix (HOST[:PORT]/PATH) to retag and push into. */
  readonly registry?: string | undefined;
  readonly log: (line: string) => void;
}

export interface LoadedImage {
  readonly ref: string;
  readonly imageId: string;
  readonly loaded: boolean;
  readonly pushedRef?: string;
  readonly pushedDigest?: string | null;
}

export interface LoadReport {
  /** True when verification passed and so images were handed to the engine. */
  readonly verified: boolean;
  readonly signature: SignatureStatus;
  readonly images: readonly LoadedImage[];
  readonly problems: readonly Problem[];
}

function toProblem(err: unknown, subject: string): Problem {
  if (err instanceof TcpAoError) return { code: err.code, subject, message: err.message };
  return { code: 'ERR_TCPAO_INTERNAL', subject, message: err instanceof Error ? err.message : String(err) };
}

/**
 * The disconnected side: verify the whole bundle first, and only when nothing
 * is wrong, docker load each image, check it arrived with the manifest's ID,
 * and optionally retag and push it into the internal registry.
 */
export async function loadBundle(dir: string, opts: LoadOptions): Promise<LoadReport> {
  const verification = await verifyBundle(dir, { cosign: opts.cosign, cosignKey: opts.cosignKey, requireSignature: opts.requireSignature });
  const manifest = verification.manifest;
  if (verification.problems.length > 0 || manifest === null) {
    return { verified: false, signature: verification.signature, images: [], problems: verification.problems };
  }
  opts.log(`bundle ${manifest.name} ${manifest.version} verified: ${manifest.files.length + 1} files match SHA256SUMS and manifest.json`);
  opts.log(verification.signature.detail);

  const problems: Problem[] = [];
  const images: LoadedImage[] = [];
  for (const image of manifest.images) {
    let loaded = false;
    try {
      opts.log(`loading ${image.file}`);
      const reported = await opts.imageTool.load(join(dir, image.file));
      if (!reported.includes(image.ref) && !reported.includes(image.imageId)) {
        problems.push({
          code: 'ERR_TCPAO_BUNDLE_IMAGE_MISSING',
          subject: image.ref,
          message: `docker load of ${image.file} reported ${reported.length === 0 ? 'nothing' : reported.join(', ')}, not this image`,
        });
      }
      const local = await opts.imageTool.inspect(image.ref);
      if (local === null) {
        problems.push({ code: 'ERR_TCPAO_BUNDLE_IMAGE_MISSING', subject: image.ref, message: 'not in the local image store after docker load' });
      } else if (local.id !== image.imageId) {
        problems.push({ code: 'ERR_TCPAO_BUNDLE_IMAGE_DIGEST', subject: image.ref, message: `local image ID is ${local.id}, manifest says ${image.imageId}` });
      } else {
        loaded = true;
      }
    } catch (err) {
      problems.push(toProblem(err, image.ref));
    }
    if (!loaded || opts.registry === undefined) {
      images.push({ ref: image.ref, imageId: image.imageId, loaded });
      continue;
    }
    const target = imageRef(opts.registry, image.name, image.tag);
    try {
      opts.log(`pushing ${target}`);
      await opts.imageTool.tag(image.ref, target);
      const digest = await opts.imageTool.push(target);
      images.push({ ref: image.ref, imageId: image.imageId, loaded, pushedRef: target, pushedDigest: digest });
    } catch (err) {
      problems.push(toProblem(err, target));
      images.push({ ref: image.ref, imageId: image.imageId, loaded });
    }
  }
  return { verified: true, signature: verification.signature, images, problems };
}
