import t, { type Test } from 'tap';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/bundle/cli.js';
import { DockerCli } from '../../src/bundle/image-tool.js';
import type { Manifest } from '../../src/bundle/manifest.js';
import type { Readiness } from '../../src/bundle/readiness.js';
import { engineSkipReason, run, startEngine, startRegistry, type Engine, type Registry, type RunResult } from './engines.js';
import { absentCosign, flipByte, linkedCopy, readJson, relist, REPO_ROOT, scratch } from './fixture.js';
import { imagesUnderTest, type ImagesUnderTest } from './images-under-test.js';
import { COSIGN_PASSWORD, cosignCli, cosignVersion, findCosign, generateKeyPair, pathWithCosign, type KeyPair } from './real-cosign.js';

/*
 * The air-gap flow end to end against real Docker engines and a real
 * registry: prepare on the connected side's engine, load into a second, empty
 * engine and push to a registry on loopback, verify, then tampered bundles
 * refused by a third, empty engine, which finally pulls the pushed images back
 * by digest and runs them. Signed with real cosign when it is available.
 *
 * TCPAO_REQUIRE_DOCKER=1 turns a missing dockerd or registry into a failure,
 * TCPAO_REQUIRE_COSIGN=1 a missing cosign; TCPAO_AIRGAP_IMAGES picks the
 * images (see images-under-test.ts).
 */

interface World {
  readonly images: ImagesUnderTest;
  readonly loadHost: Engine;
  readonly runHost: Engine;
  readonly registry: Registry;
  readonly cosign: string | null;
  /** Why there is no cosign, when there is none. */
  readonly cosignMissing: string;
  readonly cosignUsed: string;
  readonly keys: KeyPair | null;
  /** A second key pair, for the wrong-key cases. */
  readonly otherKeys: KeyPair | null;
  readonly bundle: string;
  /** The directory holding the bundle; a shell-run `touch pwned` lands there or in this process's cwd. */
  readonly parent: string;
  readonly manifest: Manifest;
  readonly prepareTime: string;
}

const MIB = 1024 * 1024;

function seconds(since: bigint): string {
  return `${(Number(process.hrtime.bigint() - since) / 1e9).toFixed(1)} s`;
}

/** Run the tool copy shipped inside the bundle, as the disconnected side does, against one engine. */
function bundleTool(world: Pick<World, 'bundle' | 'parent' | 'cosign'>, engine: Engine, args: readonly string[]): Promise<RunResult> {
  const env = { ...engine.env, PATH: world.cosign === null ? engine.env.PATH : pathWithCosign(world.cosign) };
  return run(join(world.bundle, 'tool', 'scripts', 'offline-bundle'), args, env, world.parent);
}

function internalPrefix(registry: Registry): string {
  return `${registry.address}/tcpao`;
}

async function setUp(t: Test): Promise<World> {
  const found = findCosign();
  if ('reason' in found && process.env.TCPAO_REQUIRE_COSIGN === '1') throw new Error(`TCPAO_REQUIRE_COSIGN=1 but ${found.reason}`);
  const cosign = 'path' in found ? found.path : null;
  const cosignMissing = 'reason' in found ? found.reason : '';
  const cosignUsed = cosign === null ? `none, the bundle is unsigned (${cosignMissing})` : `${cosign} (${await cosignVersion(cosign)})`;

  const [images, loadHost, runHost, registry] = await Promise.all([imagesUnderTest(t), startEngine(t, 'load'), startEngine(t, 'run'), startRegistry(t)]);
  const keys = cosign === null ? null : await generateKeyPair(t, cosign, 'site');
  const otherKeys = cosign === null ? null : await generateKeyPair(t, cosign, 'other');

  // A directory a shell would mangle: every docker and cosign call must pass it as one argument.
  const parent = scratch(t, 'tcpao-airgap-');
  const bundle = join(parent, 'the bundle $(touch pwned); x');
  const stderr: string[] = [];
  const started = process.hrtime.bigint();
  // The verb itself, in process so npm pack can skip tsc (this run has just compiled dist/).
  const code = await runCli(['prepare', '--out', bundle, '--images', images.imageList, ...(keys === null ? [] : ['--cosign-key', keys.key])], {
    imageTool: new DockerCli('docker', images.source.env),
    cosign: cosign === null ? absentCosign(t) : cosignCli(cosign),
    stdout: () => undefined,
    stderr: (line) => stderr.push(line),
    repoRoot: REPO_ROOT,
    runPackScripts: false,
  });
  if (code !== 0) throw new Error(`prepare exited ${code}: ${stderr.join(' | ')}`);
  const prepareTime = seconds(started);
  const manifest = readJson<Manifest>(join(bundle, 'manifest.json'));
  return { images, loadHost, runHost, registry, cosign, cosignMissing, cosignUsed, keys, otherKeys, bundle, parent, manifest, prepareTime };
}

function main(): void {
  const world = setUp(t);
  const pushed = new Map<string, string>();

  t.test('prepare saves the images of the source engine, at their image IDs', async (t) => {
    const { images, manifest, bundle, keys, cosignUsed, prepareTime } = await world;
    t.comment(`images under test: ${images.kind.toUpperCase()} (${images.why}): ${images.images.map((i) => i.ref).join(', ')}`);
    t.comment(`cosign: ${cosignUsed}`);
    t.comment(`prepare: ${prepareTime}`);
    t.equal(manifest.images.length, images.images.length, 'the manifest names every image of the list');
    for (const image of manifest.images) {
      const id = await images.source.docker(['image', 'inspect', '--format', '{{.Id}}', image.ref]);
      t.equal(id.stdout.trim(), image.imageId, `${image.ref}: the manifest has the source engine's image ID`);
      const saved = await run('tar', ['-x', '-O', '-f', join(bundle, image.file), 'manifest.json']);
      const entries = JSON.parse(saved.stdout) as { Config: string; RepoTags: string[] }[];
      t.same(entries.map((e) => e.RepoTags), [[image.ref]], `${image.file} is a docker save of ${image.ref}`);
      t.match(entries[0]?.Config, image.imageId.replace('sha256:', ''), `${image.file} carries the config ${image.imageId}`);
      t.comment(`${image.file}: ${(statSync(join(bundle, image.file)).size / MIB).toFixed(1)} MiB`);
    }
    t.same(manifest.signature.method, keys === null ? 'none' : 'cosign-blob', keys === null ? 'unsigned: no cosign here' : 'signed with cosign');
  });

  t.test('load puts the images into an empty engine and pushes them to the registry', async (t) => {
    const w = await world;
    t.same(await w.loadHost.imageIds(), [], 'the load host starts with no images at all');
    const verifyBefore = await bundleTool(w, w.loadHost, ['verify', w.bundle]);
    t.equal(verifyBefore.code, 1, 'verify says NOT READY before load');
    t.match(verifyBefore.stdout, /NOT READY/, 'and prints NOT READY');

    const signature = w.keys === null ? [] : ['--cosign-key', w.keys.pub, '--require-signature'];
    const started = process.hrtime.bigint();
    const load = await bundleTool(w, w.loadHost, ['load', w.bundle, '--registry', internalPrefix(w.registry), ...signature]);
    t.comment(`load and push: ${seconds(started)}`);
    t.equal(load.code, 0, `load exits 0${load.stderr.trim() === '' ? '' : `: ${load.stderr.trim()}`}`);
    if (w.keys !== null) t.match(load.stdout, /signature verified by cosign/, 'load checked the signature with real cosign');
    for (const image of w.manifest.images) {
      t.ok(load.stdout.includes(`loaded ${image.ref} (${image.imageId})`), `load reports ${image.ref}`);
      const target = `${internalPrefix(w.registry)}/${image.name}:${image.tag}`;
      const line = new RegExp(`^pushed ${target.replace(/[.]/g, '\\.')} \\((sha256:[0-9a-f]{64})\\)$`, 'm').exec(load.stdout);
      t.ok(line, `load reports the pushed digest of ${target}`);
      if (line !== null) pushed.set(image.name, line[1] as string);
      const id = await w.loadHost.docker(['image', 'inspect', '--format', '{{.Id}}', image.ref]);
      t.equal(id.stdout.trim(), image.imageId, `${image.ref} is in the load host at the manifest's image ID`);
    }
    t.same((await w.loadHost.imageIds()).sort(), w.manifest.images.map((i) => i.imageId).sort(), 'the load host holds exactly the bundle images');
  });

  t.test('verify reports ready on the load host, for the pinned and the registry refs', async (t) => {
    const w = await world;
    const text = await bundleTool(w, w.loadHost, ['verify', w.bundle, '--registry', internalPrefix(w.registry)]);
    t.equal(text.code, 0, 'verify exits 0');
    t.match(text.stdout, /READY: every image is present at the manifest image ID/, 'and says READY');
    const json = await bundleTool(w, w.loadHost, ['verify', w.bundle, '--registry', internalPrefix(w.registry), '--json']);
    t.equal(json.code, 0, 'verify --json exits 0');
    const readiness = JSON.parse(json.stdout) as Readiness;
    t.equal(readiness.ready, true, 'ready: true');
    t.equal(readiness.images.length, 2 * w.manifest.images.length, 'a pinned and a registry ref per image');
    t.ok(readiness.images.every((i) => i.state === 'ok' && i.localId === i.expectedId), 'every ref is ok at its expected ID');
  });

  async function refusedWithNothingLoaded(t: Test, w: World, copy: string, args: readonly string[]): Promise<string> {
    const load = await bundleTool(w, w.runHost, ['load', copy, ...args]);
    t.equal(load.code, 1, 'load exits 1');
    t.match(load.stderr, /bundle refused \(\d+ problems?\); nothing was loaded/, 'load says the bundle was refused');
    t.same(await w.runHost.imageIds(), [], 'the engine still has no images');
    return load.stderr;
  }

  t.test('a tampered image tarball is refused by a real engine host, with nothing loaded', async (t) => {
    const w = await world;
    const file = (w.manifest.images[0] as Manifest['images'][number]).file;

    const flipped = linkedCopy(t, w.bundle);
    flipByte(join(flipped, file));
    const flippedErr = await refusedWithNothingLoaded(t, w, flipped, []);
    t.match(flippedErr, `ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH ${file}: sha256 is`, 'a flipped byte: the tarball is named');

    const rewritten = linkedCopy(t, w.bundle);
    flipByte(join(rewritten, file));
    relist(rewritten, file, 'sums');
    const rewrittenErr = await refusedWithNothingLoaded(t, w, rewritten, []);
    t.match(rewrittenErr, `ERR_TCPAO_BUNDLE_LISTS_DISAGREE ${file}`, 'tarball and SHA256SUMS rewritten: the lists disagree');
    t.notMatch(rewrittenErr, 'CHECKSUM_MISMATCH', 'SHA256SUMS matches the tampered file, only the cross-check catches it');
  });

  t.test('real cosign: a wrong key and a rewritten SHA256SUMS are refused, with nothing loaded', async (t) => {
    const w = await world;
    if (w.cosign === null || w.keys === null || w.otherKeys === null) {
      t.pass('needs cosign', { skip: w.cosignMissing });
      return;
    }
    const { cosign, keys, otherKeys: other } = w;
    const coreutilsStep = await run(cosign, ['verify-blob', '--key', keys.pub, '--signature', 'SHA256SUMS.sig', '--insecure-ignore-tlog=true', 'SHA256SUMS'], { PATH: process.env.PATH, HOME: scratch(t, 'tcpao-cosign-home-') }, w.bundle);
    t.equal(coreutilsStep.code, 0, `the README's manual cosign verify-blob passes: ${coreutilsStep.stderr.trim()}`);

    const wrongKey = await refusedWithNothingLoaded(t, w, w.bundle, ['--cosign-key', other.pub]);
    t.match(wrongKey, 'ERR_TCPAO_BUNDLE_SIGNATURE_INVALID SHA256SUMS.sig', 'a wrong key: the signature is invalid');

    // Tarball, manifest.json and SHA256SUMS all rewritten to agree: the checksums pass, the signature does not.
    const file = (w.manifest.images[0] as Manifest['images'][number]).file;
    const rewritten = linkedCopy(t, w.bundle);
    flipByte(join(rewritten, file));
    relist(rewritten, file, 'sums-and-manifest');
    const rewrittenErr = await refusedWithNothingLoaded(t, w, rewritten, ['--cosign-key', keys.pub]);
    t.match(rewrittenErr, 'ERR_TCPAO_BUNDLE_SIGNATURE_INVALID SHA256SUMS.sig', 'a consistent rewrite: the signature is invalid');
    t.notMatch(rewrittenErr, /CHECKSUM_MISMATCH|LISTS_DISAGREE/, 'only the signature catches a consistent rewrite');
    const manual = await run(cosign, ['verify-blob', '--key', keys.pub, '--signature', 'SHA256SUMS.sig', '--insecure-ignore-tlog=true', 'SHA256SUMS'], { PATH: process.env.PATH, HOME: scratch(t, 'tcpao-cosign-home-') }, rewritten);
    t.not(manual.code, 0, 'cosign verify-blob by hand refuses the rewritten SHA256SUMS too');
  });

  t.test('real cosign signs a pushed image in the loopback registry offline; a wrong key and an unsigned image are refused', async (t) => {
    const w = await world;
    if (w.cosign === null || w.keys === null || w.otherKeys === null) {
      t.pass('needs cosign', { skip: w.cosignMissing });
      return;
    }
    const [signed, unsigned] = w.manifest.images.map((i) => ({ ref: `${internalPrefix(w.registry)}/${i.name}@${pushed.get(i.name) ?? ''}`, digest: pushed.get(i.name) }));
    if (signed?.digest === undefined || unsigned?.digest === undefined) {
      t.fail('no pushed digests; see the load test');
      return;
    }
    const cosign = w.cosign;
    const env = { PATH: process.env.PATH, HOME: scratch(t, 'tcpao-cosign-home-'), COSIGN_PASSWORD };
    // The registry speaks plain HTTP on loopback; a site registry with TLS needs no --allow-http-registry.
    const registryCosign = (args: readonly string[]) => run(cosign, [...args, '--allow-http-registry'], env);
    const sign = await registryCosign(['sign', '--yes', '--key', w.keys.key, '--tlog-upload=false', signed.ref]);
    t.equal(sign.code, 0, `cosign sign ${signed.ref}${sign.code === 0 ? '' : `: ${sign.stderr.trim()}`}`);
    const good = await registryCosign(['verify', '--key', w.keys.pub, '--insecure-ignore-tlog=true', signed.ref]);
    t.equal(good.code, 0, 'cosign verify with the signing key passes');
    t.match(good.stdout, `"docker-manifest-digest":"${signed.digest}"`, 'for the pushed digest');
    const wrongKey = await registryCosign(['verify', '--key', w.otherKeys.pub, '--insecure-ignore-tlog=true', signed.ref]);
    t.not(wrongKey.code, 0, 'cosign verify with another key is refused');
    t.match(wrongKey.stderr, /no matching signatures/);
    const notSigned = await registryCosign(['verify', '--key', w.keys.pub, '--insecure-ignore-tlog=true', unsigned.ref]);
    t.not(notSigned.code, 0, 'cosign verify of an image nobody signed is refused');
  });

  t.test('the run host pulls the pushed images back by digest and runs them', async (t) => {
    const w = await world;
    const verifyEmpty = await bundleTool(w, w.runHost, ['verify', w.bundle, '--json']);
    t.equal(verifyEmpty.code, 1, 'verify on the empty run host is NOT READY');
    t.same((JSON.parse(verifyEmpty.stdout) as Readiness).images.map((i) => i.state), w.manifest.images.map(() => 'missing'), 'every image missing');

    for (const image of w.manifest.images) {
      const digest = pushed.get(image.name);
      if (digest === undefined) {
        t.fail(`no pushed digest for ${image.name}; see the load test`);
        continue;
      }
      const byDigest = `${internalPrefix(w.registry)}/${image.name}@${digest}`;
      const pullStarted = process.hrtime.bigint();
      const pull = await w.runHost.docker(['pull', byDigest]);
      t.comment(`pull ${image.name} by digest: ${seconds(pullStarted)}`);
      t.equal(pull.code, 0, `docker pull ${byDigest}: ${pull.stderr.trim()}`);
      const id = await w.runHost.docker(['image', 'inspect', '--format', '{{.Id}}', byDigest]);
      t.equal(id.stdout.trim(), image.imageId, `${byDigest} has the manifest's image ID`);

      const check = w.images.runCheck(image);
      const runStarted = process.hrtime.bigint();
      const container = await w.runHost.docker(['run', '--rm', '--network', 'none', ...check.options, byDigest, ...check.command]);
      t.comment(`docker run ${image.name}: ${seconds(runStarted)}`);
      t.equal(container.code, 0, `docker run ${byDigest}: ${container.stderr.trim()}`);
      t.match(container.stdout, check.expect, `${image.name} runs from the registry copy`);
    }
    t.notOk(existsSync(join(w.parent, 'pwned')) || existsSync(join(process.cwd(), 'pwned')), 'no step ran the bundle path through a shell');
  });
}

const skip = engineSkipReason();
if (skip === null) {
  // Saving, hashing, loading and pushing two real images takes minutes on a loaded host.
  t.setTimeout(1_800_000);
  main();
} else if (process.env.TCPAO_REQUIRE_DOCKER === '1') {
  t.fail(`TCPAO_REQUIRE_DOCKER=1 but ${skip}`);
} else {
  t.pass('needs dockerd and docker-registry', { skip });
}
