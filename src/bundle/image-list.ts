import { readFileSync } from 'node:fs';
import { TcpAoError } from '../errors.js';

/** One of our published images, pinned (deploy/images/images.json). */
export interface PinnedImage {
  readonly name: string;
  readonly tag: string;
  readonly role: string;
  /** registry/name:tag */
  readonly ref: string;
}

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** HOST[:PORT][/PATH...], no scheme, no tag, no trailing slash. */
const REGISTRY = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

export function isRegistryPrefix(value: string): boolean {
  return REGISTRY.test(value);
}

export function imageRef(registry: string, name: string, tag: string): string {
  return `${registry}/${name}:${tag}`;
}

function listError(path: string, what: string): TcpAoError {
  return new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_LIST', `${path}: ${what}`);
}

/**
 * Read the pinned image list. `registryOverride` replaces its registry (for a
 * fork that publishes under another owner); the names and tags stay pinned.
 */
export function readImageList(path: string, registryOverride?: string): PinnedImage[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_LIST', `${path}: cannot read the image list (${(err as Error).message})`, { cause: err });
  }
  const top = raw as { registry?: unknown; images?: unknown };
  const registry = registryOverride ?? top.registry;
  if (typeof registry !== 'string' || !isRegistryPrefix(registry)) {
    throw listError(path, `registry ${JSON.stringify(registry)} must look like HOST[:PORT]/PATH with no scheme or tag`);
  }
  if (!Array.isArray(top.images) || top.images.length === 0) throw listError(path, 'images must be a non-empty array');
  const seen = new Set<string>();
  return top.images.map((entry: unknown, i: number): PinnedImage => {
    const img = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const { name, tag, role } = img;
    if (typeof name !== 'string' || !NAME.test(name)) throw listError(path, `images[${i}].name must be a lowercase image name`);
    if (typeof tag !== 'string' || !TAG.test(tag)) throw listError(path, `images[${i}].tag must be a docker tag`);
    if (tag === 'latest') throw listError(path, `images[${i}].tag is "latest"; pin a version so both sides agree on the bytes`);
    if (typeof role !== 'string' || role.length === 0) throw listError(path, `images[${i}].role must be a non-empty string`);
    if (seen.has(name)) throw listError(path, `images[${i}]: ${name} is listed twice`);
    seen.add(name);
    return { name, tag, role, ref: imageRef(registry, name, tag) };
  });
}
