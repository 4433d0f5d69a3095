import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/bundle/cli.js';
import type { LocalImage } from '../../src/bundle/image-tool.js';
import { loadBundle } from '../../src/bundle/load.js';
import type { Manifest } from '../../src/bundle/manifest.js';
import { checkReadiness, type Readiness } from '../../src/bundle/readiness.js';
import { verifyBundle, type Problem } from '../../src/bundle/verify-bundle.js';
import { FakeImageTool } from './fake-image-tool.js';
import { absentCosign, copyBundle, flipByte, prepareFixture, readJson, REPO_ROOT, rewriteReadmeConsistently, scratch, sha256, type PreparedFixture } from './fixture.js';

const fixture: Promise<PreparedFixture> = prepareFixture(t);

function codesFor(problems: readonly Problem[], subject: string): string[] {
  return problems.filter((p) => p.subject === subject).map((p) => p.code).sort();
}

/** Load into a fresh disconnected-side store; returns the report and that store. */
async function loadInto(t: Test, dir: string, registry?: string) {
  const target = new FakeImageTool();
  const report = await loadBundle(dir, { imageTool: target, cosign: absentCosign(t), registry, log: () => undefined });
  return { report, target };
}

t.test('prepare writes a complete bundle whose checksums verify with sha256sum', async (t) => {
  const { dir, manifest, source, log } = await fixture;
  const top = readdirSync(dir).sort();
  t.same(top, ['README.txt', 'SHA256SUMS', 'images', 'manifest.json', 'npm', 'sbom', 'tool'], 'no signature file when unsigned');

  const out = execFileSync('sha256sum', ['--check', '--strict', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
  const okLines = out.split('\n').filter((l) => l.endsWith(': OK'));
  t.equal(okLines.length, manifest.files.length + 1, 'sha256sum checks every file and manifest.json');
  t.match(out, /manifest\.json: OK/);

  for (const file of manifest.files) {
    const data = readFileSync(join(dir, file.path));
    t.equal(file.size, data.length, `${file.path} size`);
    t.equal(file.sha256, sha256(data), `${file.path} sha256`);
  }

  t.equal(manifest.images.length, 2);
  for (const image of manifest.images) {
    t.equal(image.imageId, source.store.get(image.ref)?.id, `${image.ref}: the manifest records the saved image ID`);
    t.ok(existsSync(join(dir, image.file)), `${image.file} exists`);
  }
  t.same(source.calls.filter((c) => c.startsWith('save ')).length, 2, 'docker save once per image');

  const pkg = readJson<{ name: string; version: string; dependencies: Record<string, string> }>(join(REPO_ROOT, 'package.json'));
  t.equal(manifest.name, pkg.name);
  t.equal(manifest.version, pkg.version);
  t.equal(manifest.npmPackage.file, `npm/${pkg.name}-${pkg.version}.tgz`);
  for (const dep of Object.keys(pkg.dependencies)) t.ok(manifest.npmPackage.bundledDependencies.includes(dep), `tarball bundles ${dep}`);
  t.equal(manifest.source.commit, execFileSync('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim(), 'source commit');
  t.ok(Math.abs(Date.parse(manifest.createdAt) - Date.now()) < 24 * 3_600_000, 'creation time is a real recent time');
  t.same(manifest.signature, { method: 'none', note: 'signature: none, checksums only' });
  t.ok(log.some((l) => l.includes('signature: none, checksums only')), 'prepare says plainly that nothing was signed');
  t.match(readFileSync(join(dir, 'README.txt'), 'utf8'), /NOT signed \(signature: none, checksums only\)/);
  t.notOk(existsSync(`${dir}.partial`), 'no staging directory left behind');

  const verification = await verifyBundle(dir, { cosign: absentCosign(t) });
  t.same(verification.problems, [], 'our own verifier accepts the pristine bundle');
  t.equal(verification.signature.state, 'none');
});

t.test('the SBOM is CycloneDX JSON of exactly the runtime tree the tarball ships', async (t) => {
  const { dir, manifest } = await fixture;
  const sbom = readJson<{
    bomFormat: string;
    specVersion: string;
    metadata: { component: { name: string; version: string } };
    components: Array<{ name: string; version: string; purl: string }>;
  }>(join(dir, manifest.sbom.file));
  t.equal(sbom.bomFormat, 'CycloneDX');
  t.match(sbom.specVersion, /^1\.\d+$/);
  t.equal(sbom.metadata.component.name, manifest.name);
  t.equal(sbom.metadata.component.version, manifest.version);

  const pkg = readJson<{ dependencies: Record<string, string>; devDependencies: Record<string, string> }>(join(REPO_ROOT, 'package.json'));
  for (const [dep, version] of Object.entries(pkg.dependencies)) {
    t.ok(sbom.components.some((c) => c.name === dep && c.version === version), `lists ${dep}@${version}`);
  }
  for (const dev of Object.keys(pkg.devDependencies)) t.notOk(sbom.components.some((c) => c.name === dev), `omits dev dependency ${dev}`);
  for (const c of sbom.components) t.match(c.purl, /^pkg:npm\//, `${c.name} has an npm purl`);

  // Every component is a package directory inside the tarball, and vice versa.
  const listing = execFileSync('tar', ['-tzf', join(dir, manifest.npmPackage.file)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const shipped = new Set<string>();
  for (const line of listing.split('\n')) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/@][^/]*)\/package\.json$/.exec(line);
    if (match !== null && !/\/(test|fixtures?)\//.test(line)) shipped.add(match[1] as string);
  }
  const listed = new Set(sbom.components.map((c) => c.name));
  t.same([...listed].filter((n) => !shipped.has(n)), [], 'no SBOM component is absent from the tarball');
  t.ok(listed.size >= Object.keys(pkg.dependencies).length, 'at least the direct runtime dependencies');
});

t.test('tampered bundles are refused, naming the file, and nothing is loaded', async (t) => {
  const { dir, manifest } = await fixture;
  const imageFile = manifest.images[0]!.file;
  const npmFile = manifest.npmPackage.file;

  t.test('a flipped byte', async (t) => {
    const copy = copyBundle(t, dir);
    flipByte(join(copy, imageFile));
    const { report, target } = await loadInto(t, copy);
    t.equal(report.verified, false);
    t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH', imageFile]]);
    t.same(target.calls, [], 'the image tool was never called');
  });

  t.test('a truncated file', async (t) => {
    const copy = copyBundle(t, dir);
    truncateSync(join(copy, npmFile), Math.floor(statSync(join(copy, npmFile)).size / 2));
    const { report, target } = await loadInto(t, copy);
    t.equal(report.verified, false);
    t.same(codesFor(report.problems, npmFile), ['ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH', 'ERR_TCPAO_BUNDLE_SIZE_MISMATCH']);
    t.equal(report.problems.length, 2);
    t.same(target.calls, []);
  });

  t.test('a missing file', async (t) => {
    const copy = copyBundle(t, dir);
    unlinkSync(join(copy, manifest.sbom.file));
    const { report, target } = await loadInto(t, copy);
    t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_FILE_MISSING', manifest.sbom.file]]);
    t.same(target.calls, []);
  });

  t.test('an extra file', async (t) => {
    const copy = copyBundle(t, dir);
    writeFileSync(join(copy, 'images', 'helper.tar'), 'not ours');
    const { report, target } = await loadInto(t, copy);
    t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_FILE_EXTRA', 'images/helper.tar']]);
    t.same(target.calls, []);
  });

  t.test('a manifest edited to match a tampered file, SHA256SUMS untouched', async (t) => {
    const copy = copyBundle(t, dir);
    const readme = join(copy, 'README.txt');
    writeFileSync(readme, `${readFileSync(readme, 'utf8')}\nLoad with --skip-checks.\n`);
    const edited = readJson<Manifest>(join(copy, 'manifest.json'));
    const data = readFileSync(readme);
    const entry = edited.files.find((f) => f.path === 'README.txt') as { size: number; sha256: string };
    entry.size = data.length;
    entry.sha256 = sha256(data);
    writeFileSync(join(copy, 'manifest.json'), `${JSON.stringify(edited, null, 2)}\n`);
    const { report, target } = await loadInto(t, copy);
    t.equal(report.verified, false);
    t.same(codesFor(report.problems, 'README.txt'), ['ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH', 'ERR_TCPAO_BUNDLE_LISTS_DISAGREE']);
    t.same(codesFor(report.problems, 'manifest.json'), ['ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH'], 'the edited manifest itself is named');
    t.same(target.calls, []);
  });

  t.test('SHA256SUMS edited to match a tampered file, manifest untouched', async (t) => {
    const copy = copyBundle(t, dir);
    const readme = join(copy, 'README.txt');
    const before = sha256(readFileSync(readme));
    writeFileSync(readme, 'replaced instructions\n');
    const sumsPath = join(copy, 'SHA256SUMS');
    writeFileSync(sumsPath, readFileSync(sumsPath, 'utf8').replace(before, sha256(readFileSync(readme))));
    const { report, target } = await loadInto(t, copy);
    t.equal(report.verified, false);
    t.same(codesFor(report.problems, 'README.txt'), ['ERR_TCPAO_BUNDLE_LISTS_DISAGREE', 'ERR_TCPAO_BUNDLE_SIZE_MISMATCH']);
    t.same(target.calls, []);
  });

  t.test('a malformed SHA256SUMS, a symlink, and a missing manifest', async (t) => {
    const copy = copyBundle(t, dir);
    writeFileSync(join(copy, 'SHA256SUMS'), 'garbage\n');
    symlinkSync('/etc/passwd', join(copy, 'images', 'link.tar'));
    unlinkSync(join(copy, 'manifest.json'));
    const { report, target } = await loadInto(t, copy);
    t.same(codesFor(report.problems, 'SHA256SUMS'), ['ERR_TCPAO_BUNDLE_SUMS_INVALID']);
    t.same(codesFor(report.problems, 'images/link.tar'), ['ERR_TCPAO_BUNDLE_FILE_TYPE']);
    t.same(codesFor(report.problems, 'manifest.json'), ['ERR_TCPAO_BUNDLE_FILE_MISSING']);
    t.equal(report.problems.length, 3, 'no flood of "extra file" lines while SHA256SUMS is unusable');
    t.same(target.calls, []);
  });

  t.test('both lists rewritten consistently pass checksums alone: the documented limit', async (t) => {
    // Only a signature (cosign.test.ts) stops someone who can rewrite every list.
    const copy = copyBundle(t, dir);
    rewriteReadmeConsistently(copy);
    const result = await verifyBundle(copy, { cosign: absentCosign(t) });
    t.same(result.problems, []);
    t.equal(result.signature.state, 'none', 'and the result says so: no signature was checked');
  });
});

t.test('load: docker load each image, check its ID, retag and push on request', async (t) => {
  const { dir, manifest } = await fixture;

  const plain = await loadInto(t, dir);
  t.equal(plain.report.verified, true);
  t.same(plain.report.problems, []);
  for (const image of manifest.images) {
    t.equal(plain.target.store.get(image.ref)?.id, image.imageId, `${image.ref} loaded at the manifest ID`);
  }
  t.equal(plain.target.calls.filter((c) => c.startsWith('load ')).length, 2);
  t.equal(plain.target.calls.filter((c) => c.startsWith('push ')).length, 0, 'no push without --registry');

  const mirrored = await loadInto(t, dir, 'registry.lab.internal:5000/tcpao');
  t.same(mirrored.report.problems, []);
  for (const image of manifest.images) {
    const pushed = `registry.lab.internal:5000/tcpao/${image.name}:${image.tag}`;
    t.equal(mirrored.target.registry.get(pushed), image.imageId, `${pushed} pushed with the same image`);
    t.ok(mirrored.report.images.some((i) => i.pushedRef === pushed && typeof i.pushedDigest === 'string'));
  }

  const failing = new FakeImageTool();
  const firstPush = `registry.lab.internal/tcpao/${manifest.images[0]!.name}:${manifest.images[0]!.tag}`;
  failing.failPushFor = firstPush;
  const report = await loadBundle(dir, { imageTool: failing, cosign: absentCosign(t), registry: 'registry.lab.internal/tcpao', log: () => undefined });
  t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_IMAGE_TOOL', firstPush]], 'a failed push is reported against its target');

  class WrongIdOnLoad extends FakeImageTool {
    override async load(path: string): Promise<string[]> {
      const refs = await super.load(path);
      for (const ref of refs) this.store.set(ref, { id: FakeImageTool.idFor('something else'), repoDigests: [] });
      return refs;
    }
  }
  const wrong = await loadBundle(dir, { imageTool: new WrongIdOnLoad(), cosign: absentCosign(t), log: () => undefined });
  t.equal(wrong.problems.length, 2);
  t.ok(wrong.problems.every((p) => p.code === 'ERR_TCPAO_BUNDLE_IMAGE_DIGEST'), 'an image that arrives with another ID is reported');
});

t.test('verify reports ready / not ready, as text and JSON', async (t) => {
  const { dir, manifest } = await fixture;
  const [first, second] = manifest.images as [Manifest['images'][0], Manifest['images'][0]];
  const { target } = await loadInto(t, dir);
  const lines: string[] = [];
  const errors: string[] = [];
  const deps = { imageTool: target, cosign: absentCosign(t), stdout: (l: string) => lines.push(l), stderr: (l: string) => errors.push(l) };

  t.equal(await runCli(['verify', dir], deps), 0, 'ready: exit 0');
  t.match(lines.join('\n'), /READY: every image is present/);
  t.match(lines.join('\n'), new RegExp(`${first.ref.replace(/[.]/g, '\\.')}\\s+ok\\s+${first.imageId}`));

  lines.length = 0;
  t.equal(await runCli(['verify', dir, '--json'], deps), 0);
  const ready = JSON.parse(lines.join('\n')) as Readiness;
  t.equal(ready.ready, true);
  t.same(ready.images.map((i) => i.state), ['ok', 'ok']);

  target.store.delete(first.ref);
  target.store.set(second.ref, { id: FakeImageTool.idFor('rebuilt'), repoDigests: [] } satisfies LocalImage);
  lines.length = 0;
  t.equal(await runCli(['verify', dir], deps), 1, 'not ready: exit 1');
  const text = lines.join('\n');
  t.match(text, /MISSING/);
  t.match(text, /WRONG ID/);
  t.match(text, /NOT READY: 2 problems/);

  lines.length = 0;
  t.equal(await runCli(['verify', dir, '--json'], deps), 1);
  const notReady = JSON.parse(lines.join('\n')) as Readiness;
  t.equal(notReady.ready, false);
  t.same(
    notReady.images.map((i) => [i.ref, i.state]),
    [
      [first.ref, 'missing'],
      [second.ref, 'digest-mismatch'],
    ],
  );
  t.same(notReady.problems.map((p) => p.code), ['ERR_TCPAO_BUNDLE_IMAGE_MISSING', 'ERR_TCPAO_BUNDLE_IMAGE_DIGEST']);

  const registryCheck = await checkReadiness(dir, (await loadInto(t, dir)).target, 'registry.lab.internal/tcpao');
  t.equal(registryCheck.ready, false, 'with --registry the retagged names must be present too');
  t.equal(registryCheck.images.filter((i) => i.state === 'missing').length, 2);

  const copy = copyBundle(t, dir);
  const edited = readJson<Manifest>(join(copy, 'manifest.json'));
  (edited.images[0] as { imageId: string }).imageId = FakeImageTool.idFor('rebuilt');
  writeFileSync(join(copy, 'manifest.json'), JSON.stringify(edited));
  const untrusted = await checkReadiness(copy, target);
  t.equal(untrusted.ready, false, 'a manifest that does not match SHA256SUMS is not trusted');
  t.same(untrusted.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH', 'manifest.json']]);
});

t.test('CLI: one coded line per problem, exit 1 for a refused bundle, 2 for usage', async (t) => {
  const { dir, manifest } = await fixture;
  const copy = copyBundle(t, dir);
  flipByte(join(copy, manifest.images[1]!.file));
  writeFileSync(join(copy, 'notes.txt'), 'hello');
  const target = new FakeImageTool();
  const out: string[] = [];
  const err: string[] = [];
  const deps = { imageTool: target, cosign: absentCosign(t), stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) };

  t.equal(await runCli(['load', copy], deps), 1);
  t.same(err, [
    `offline-bundle: ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH ${manifest.images[1]!.file}: ${err[0]?.split(': ').slice(2).join(': ')}`,
    'offline-bundle: ERR_TCPAO_BUNDLE_FILE_EXTRA notes.txt: not named by SHA256SUMS or manifest.json; remove it or use an untouched copy of the bundle',
    'offline-bundle: bundle refused (2 problems); nothing was loaded',
  ]);
  t.match(err[0], /sha256 is [0-9a-f]{16}…, SHA256SUMS says [0-9a-f]{16}…/);
  t.same(target.calls, []);

  const usage = async (argv: string[]): Promise<[number, string]> => {
    err.length = 0;
    return [await runCli(argv, deps), err.join('\n')];
  };
  t.match(await usage([]), [2, /ERR_TCPAO_USAGE missing verb/]);
  t.match(await usage(['unpack', dir]), [2, /ERR_TCPAO_USAGE unknown verb "unpack"/]);
  t.match(await usage(['load']), [2, /ERR_TCPAO_USAGE expected exactly one BUNDLE_DIR/]);
  t.match(await usage(['load', dir, '--registry', 'https://r.example/x']), [2, /ERR_TCPAO_USAGE --registry/]);
  t.same(await usage(['load', dir, '--frobnicate']), [2, 'offline-bundle: ERR_TCPAO_USAGE unknown option --frobnicate; run offline-bundle load --help']);
  // The shared CLI parser: one line per problem, and no argument value repeated back.
  t.same(await usage(['prepare', '--out']), [2, 'offline-bundle: ERR_TCPAO_USAGE --out needs a value (DIR)']);
  t.same(await usage(['prepare', 'stray-value']), [2, 'offline-bundle: ERR_TCPAO_USAGE unexpected argument; offline-bundle prepare takes options only']);
  t.same(await usage(['verify', dir, dir, '--json=yes']), [
    2,
    'offline-bundle: ERR_TCPAO_USAGE --json takes no value\noffline-bundle: ERR_TCPAO_USAGE too many arguments; expected at most BUNDLE_DIR',
  ]);
  t.same(await usage(['load', dir, '--registry', 'r.example/a', '--registry', 'r.example/b']), [2, 'offline-bundle: ERR_TCPAO_USAGE --registry is given more than once']);
  out.length = 0;
  t.equal(await runCli(['load', '--frobnicate', '--help'], deps), 0, 'help wins over the other problems');
  t.equal(out[0], 'Usage: offline-bundle load BUNDLE_DIR [--registry HOST/PATH] [--cosign-key PUBKEY] [--require-signature]');
  t.ok(out.some((line) => /^ +--require-signature +refuse a bundle whose signature is absent or unchecked$/.test(line)), 'the options are listed');
  t.match(await usage(['verify', join(dir, 'nope')]), [2, /ERR_TCPAO_BUNDLE_NOT_FOUND/]);
  t.match(await usage(['prepare', '--out', dir]), [2, /ERR_TCPAO_BUNDLE_OUTPUT_EXISTS .* already exists and is not empty/]);

  const emptyStore = new FakeImageTool();
  const out2 = join(scratch(t, 'tcpao-noimg-'), 'b');
  err.length = 0;
  const code = await runCli(['prepare', '--out', out2], { ...deps, imageTool: emptyStore, repoRoot: REPO_ROOT, runPackScripts: false });
  t.equal(code, 1);
  t.match(err.join('\n'), /ERR_TCPAO_BUNDLE_IMAGE_MISSING .* is not in the local image store; build it \(make images\) or pass --pull/);
  t.notOk(existsSync(out2) || existsSync(`${out2}.partial`), 'a failed prepare leaves nothing behind');
});

t.test('the tool shipped inside the bundle runs standalone with the real docker CLI', async (t) => {
  const { dir, manifest } = await fixture;
  const copy = copyBundle(t, dir);
  const tool = join(copy, 'tool', 'scripts', 'offline-bundle');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch(t, 'tcpao-home-') };

  // Refusal happens before docker is involved.
  const tampered = copyBundle(t, dir);
  flipByte(join(tampered, manifest.npmPackage.file));
  const refused = spawnSync(tool, ['load', tampered], { encoding: 'utf8', env, cwd: scratch(t, 'tcpao-cwd-') });
  t.equal(refused.status, 1);
  t.match(refused.stderr, new RegExp(`ERR_TCPAO_BUNDLE_CHECKSUM_MISMATCH ${manifest.npmPackage.file.replace(/[.]/g, '\\.')}:`));
  t.match(refused.stderr, /nothing was loaded/);

  // A pristine bundle verifies; the docker step then fails plainly because no engine runs here.
  const loaded = spawnSync(tool, ['load', copy], { encoding: 'utf8', env });
  t.equal(loaded.status, 1);
  t.match(loaded.stdout, /verified: \d+ files match SHA256SUMS and manifest\.json/);
  t.match(loaded.stdout, /signature: none, checksums only/);
  t.match(loaded.stderr, /ERR_TCPAO_BUNDLE_IMAGE_TOOL .*docker load failed/);

  const verified = spawnSync(tool, ['verify', copy, '--json'], { encoding: 'utf8', env });
  t.equal(verified.status, 1, 'not ready without an engine');
  const readiness = JSON.parse(verified.stdout) as Readiness;
  t.equal(readiness.ready, false);
  t.ok(readiness.images.every((i) => i.state === 'error'));

  const help = spawnSync(tool, ['--help'], { encoding: 'utf8', env });
  t.equal(help.status, 0);
  t.match(help.stdout, /offline-bundle load BUNDLE_DIR/);
  const none = spawnSync(tool, [], { encoding: 'utf8', env });
  t.equal(none.status, 2, 'no arguments is a usage error');
});

t.test('a bundle holds plain files only: directories are walked, nothing else is followed', async (t) => {
  const { dir } = await fixture;
  const copy = copyBundle(t, dir);
  mkdirSync(join(copy, 'images', 'nested'));
  writeFileSync(join(copy, 'images', 'nested', 'x'), '');
  const result = await verifyBundle(copy, { cosign: absentCosign(t) });
  t.same(result.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_FILE_EXTRA', 'images/nested/x']]);
});
