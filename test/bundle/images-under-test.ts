import type { Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImageList, type PinnedImage } from '../../src/bundle/image-list.js';
import { existingEngine, run, startEngine, type Engine } from './engines.js';
import { IMAGE_LIST, REPO_ROOT, readJson, scratch } from './fixture.js';

/*
 * Which images the air-gap flow carries. The real ones (`make images`, refs
 * from deploy/images/images.json) when the source engine holds them; otherwise
 * two tiny images built here, offline, under the same names and a test
 * registry. TCPAO_AIRGAP_IMAGES=real makes the real images mandatory (CI after
 * `make images`), =tiny forces the tiny ones. The source engine is
 * TCPAO_IMAGES_DOCKER_HOST, else DOCKER_HOST, else the default socket.
 */

export interface RunCheck {
  readonly options: readonly string[];
  readonly command: readonly string[];
  readonly expect: string;
}

export interface ImagesUnderTest {
  readonly kind: 'real' | 'tiny';
  /** Why this kind was chosen, for the test output. */
  readonly why: string;
  /** The connected side's engine, holding every image of the list. */
  readonly source: Engine;
  /** The image list prepare reads (--images). */
  readonly imageList: string;
  readonly images: readonly PinnedImage[];
  /** How to run an image briefly: docker run options, the command after the ref, what the output must contain. */
  runCheck(image: PinnedImage): RunCheck;
}

const TINY_REGISTRY = 'airgap-test.invalid/tcpao';
const DEFAULT_SOCKET = 'unix:///var/run/docker.sock';

/** A static C program: the whole tiny image is this binary and a file naming the image. */
const PROBE_SOURCE = `#include <stdio.h>
int main(void) {
  char name[128] = {0};
  FILE *f = fopen("/etc/image-name", "r");
  if (f == NULL || fgets(name, sizeof name, f) == NULL) return 1;
  fclose(f);
  printf("airgap probe in %s", name);
  return 0;
}
`;

async function missingRefs(engine: Engine, images: readonly PinnedImage[]): Promise<string[] | string> {
  const version = await engine.docker(['version', '--format', '{{.Server.Version}}']);
  if (version.code !== 0) return `no engine answers at ${engine.host} (${version.stderr.trim().split('\n')[0] ?? ''})`;
  const missing: string[] = [];
  for (const image of images) {
    if ((await engine.docker(['image', 'inspect', '--format', '{{.Id}}', image.ref])).code !== 0) missing.push(image.ref);
  }
  return missing;
}

async function buildTinyImages(t: Test, engine: Engine, images: readonly PinnedImage[]): Promise<void> {
  const dir = scratch(t, 'tcpao-tiny-image-');
  writeFileSync(join(dir, 'probe.c'), PROBE_SOURCE);
  const cc = await run('cc', ['-static', '-O2', '-o', join(dir, 'probe'), join(dir, 'probe.c')]);
  if (cc.code !== 0) throw new Error(`building the static probe failed: ${cc.stderr.trim()}`);
  for (const image of images) {
    const root = join(dir, image.name);
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'image-name'), `${image.name}\n`);
    const rootfs = join(dir, `${image.name}.tar`);
    const tar = await run('tar', ['-c', '-f', rootfs, '-C', root, '.', '-C', dir, 'probe']);
    if (tar.code !== 0) throw new Error(`tar of ${image.name} failed: ${tar.stderr.trim()}`);
    const imported = await engine.docker(['import', '--change', 'CMD ["/probe"]', rootfs, image.ref]);
    if (imported.code !== 0) throw new Error(`docker import of ${image.ref} failed: ${imported.stderr.trim()}`);
  }
}

export async function imagesUnderTest(t: Test): Promise<ImagesUnderTest> {
  const wanted = process.env.TCPAO_AIRGAP_IMAGES ?? 'auto';
  if (!['auto', 'real', 'tiny'].includes(wanted)) throw new Error(`TCPAO_AIRGAP_IMAGES=${wanted}: use real, tiny or leave it unset`);
  const version = readJson<{ version: string }>(join(REPO_ROOT, 'package.json')).version;

  let why: string = 'TCPAO_AIRGAP_IMAGES=tiny';
  if (wanted !== 'tiny') {
    const host = process.env.TCPAO_IMAGES_DOCKER_HOST ?? process.env.DOCKER_HOST ?? DEFAULT_SOCKET;
    const source = existingEngine('images', host);
    const images = readImageList(IMAGE_LIST);
    const missing = await missingRefs(source, images);
    if (Array.isArray(missing) && missing.length === 0) {
      return {
        kind: 'real',
        why: `every ref of deploy/images/images.json is in the engine at ${host}`,
        source,
        imageList: IMAGE_LIST,
        images,
        runCheck: () => ({ options: ['--entrypoint', 'tcpao-proxy'], command: ['--version'], expect: `tcpao-proxy ${version}` }),
      };
    }
    why = typeof missing === 'string' ? missing : `the engine at ${host} lacks ${missing.join(', ')} (run make images)`;
    if (wanted === 'real') throw new Error(`TCPAO_AIRGAP_IMAGES=real but ${why}`);
  }

  const list = join(scratch(t, 'tcpao-tiny-list-'), 'images.json');
  const pinned = readJson<{ images: { name: string; tag: string; role: string }[] }>(IMAGE_LIST);
  writeFileSync(list, `${JSON.stringify({ registry: TINY_REGISTRY, images: pinned.images.map(({ name, tag, role }) => ({ name, tag, role })) }, null, 2)}\n`);
  const images = readImageList(list);
  const source = await startEngine(t, 'source');
  await buildTinyImages(t, source, images);
  return {
    kind: 'tiny',
    why,
    source,
    imageList: list,
    images,
    runCheck: (image) => ({ options: [], command: [], expect: `airgap probe in ${image.name}` }),
  };
}
