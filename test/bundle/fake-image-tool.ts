import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ImageTool, LocalImage } from '../../src/bundle/image-tool.js';
import { TcpAoError } from '../../src/errors.js';

/** Stands in for the Docker engine: an in-memory image store, and archives that are small JSON files. */
export class FakeImageTool implements ImageTool {
  readonly store = new Map<string, LocalImage>();
  readonly calls: string[] = [];
  /** Registry contents after push: ref -> image ID. */
  readonly registry = new Map<string, string>();
  /** A ref whose push fails, to exercise error reporting. */
  failPushFor: string | null = null;

  static idFor(seed: string): string {
    return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
  }

  /** Put an image in the local store, as a build or pull would. */
  add(ref: string, id: string = FakeImageTool.idFor(ref)): string {
    this.store.set(ref, { id, repoDigests: [] });
    return id;
  }

  async pull(ref: string): Promise<void> {
    this.calls.push(`pull ${ref}`);
    if (!this.store.has(ref)) this.add(ref);
  }

  async save(ref: string, path: string): Promise<void> {
    this.calls.push(`save ${ref}`);
    const image = this.store.get(ref);
    if (image === undefined) throw new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_TOOL', `docker save failed: No such image: ${ref}`);
    writeFileSync(path, JSON.stringify({ format: 'fake-docker-archive', ref, id: image.id, layers: 'x'.repeat(4_096) }));
  }

  async load(path: string): Promise<string[]> {
    this.calls.push(`load ${path}`);
    const archive = JSON.parse(readFileSync(path, 'utf8')) as { ref: string; id: string };
    this.store.set(archive.ref, { id: archive.id, repoDigests: [] });
    return [archive.ref];
  }

  async inspect(ref: string): Promise<LocalImage | null> {
    this.calls.push(`inspect ${ref}`);
    return this.store.get(ref) ?? null;
  }

  async tag(source: string, target: string): Promise<void> {
    this.calls.push(`tag ${source} ${target}`);
    const image = this.store.get(source);
    if (image === undefined) throw new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_TOOL', `docker tag failed: No such image: ${source}`);
    this.store.set(target, image);
  }

  async push(ref: string): Promise<string | null> {
    this.calls.push(`push ${ref}`);
    if (ref === this.failPushFor) throw new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_TOOL', `docker push ${ref} failed: connection refused`);
    const image = this.store.get(ref);
    if (image === undefined) throw new TcpAoError('ERR_TCPAO_BUNDLE_IMAGE_TOOL', `docker push failed: No such image: ${ref}`);
    this.registry.set(ref, image.id);
    return FakeImageTool.idFor(`manifest of ${ref}`);
  }
}
