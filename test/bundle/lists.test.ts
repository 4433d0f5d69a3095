import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { formatSums, isSafeBundlePath, parseSums, sha256File } from '../../src/bundle/checksums.js';
import { readImageList, isRegistryPrefix } from '../../src/bundle/image-list.js';
import { parseLoadOutput, parsePushDigest } from '../../src/bundle/image-tool.js';
import { MANIFEST_SCHEMA, parseManifest, validateManifest } from '../../src/bundle/manifest.js';
import { hasCode } from '../../src/errors.js';

const HEX_A = 'a'.repeat(64);
const HEX_B = 'b'.repeat(64);

function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpao-lists-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('SHA256SUMS round-trips, is sorted, and sha256sum -c accepts what we write', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'b.txt'), 'bravo\n');
  writeFileSync(join(dir, 'a.txt'), 'alpha\n');
  const entries = [
    { path: 'b.txt', sha256: await sha256File(join(dir, 'b.txt')) },
    { path: 'a.txt', sha256: await sha256File(join(dir, 'a.txt')) },
  ];
  const text = formatSums(entries);
  t.equal(text.split('\n')[0]?.endsWith('  a.txt'), true, 'entries are sorted by path');
  t.same(parseSums(text), [entries[1], entries[0]]);
  writeFileSync(join(dir, 'SHA256SUMS'), text);
  const out = execFileSync('sha256sum', ['--check', '--strict', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
  t.match(out, /a\.txt: OK/);
  t.match(out, /b\.txt: OK/);
});

t.test('SHA256SUMS parsing refuses malformed input with the line number', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['no newline at the end', `${HEX_A}  a`, /truncated/],
    ['short hash', `${'a'.repeat(63)}  a\n`, /line 1/],
    ['uppercase hash', `${'A'.repeat(64)}  a\n`, /line 1/],
    ['one space', `${HEX_A} a\n`, /line 1/],
    ['parent path', `${HEX_A}  ../etc/passwd\n`, /line 1: path/],
    ['absolute path', `${HEX_A}  /etc/passwd\n`, /line 1: path/],
    ['duplicate', `${HEX_A}  a\n${HEX_B}  a\n`, /line 2: a is listed twice/],
    ['empty', '', /lists no files/],
  ];
  for (const [name, text, message] of cases) {
    t.throws(() => parseSums(text), { code: 'ERR_TCPAO_BUNDLE_SUMS_INVALID', message }, name);
  }
  t.same(parseSums(`${HEX_A} *bin.tar\n`), [{ path: 'bin.tar', sha256: HEX_A }], 'the binary-mode marker is accepted');
});

t.test('bundle paths are plain relative paths', async (t) => {
  for (const good of ['a', 'images/x_0.1.0.tar', 'npm/tcpao-proxy-0.1.0.tgz', 'sbom/@scope+x.json']) t.ok(isSafeBundlePath(good), good);
  for (const bad of ['', '/a', 'a/../b', './a', 'a//b', 'a b', 'a\nb', 'a\\b', 'x'.repeat(256)]) t.notOk(isSafeBundlePath(bad), JSON.stringify(bad));
});

function goodManifest(): Record<string, unknown> {
  return {
    schema: MANIFEST_SCHEMA,
    name: 'tcpao-proxy',
    version: '0.1.0',
    createdAt: '2026-01-02T03:04:05.000Z',
    source: { commit: 'abc', dirty: false },
    images: [{ name: 'img', role: 'terminator', ref: 'r.example/x/img:0.1.0', tag: '0.1.0', imageId: `sha256:${HEX_A}`, repoDigests: [], file: 'images/img.tar' }],
    npmPackage: { file: 'npm/p.tgz', name: 'tcpao-proxy', version: '0.1.0', bundledDependencies: ['zod'], nativeAddon: 'built at install' },
    sbom: { file: 'sbom/s.json', format: 'CycloneDX JSON', describes: 'npm/p.tgz' },
    signature: { method: 'none', note: 'signature: none, checksums only' },
    files: [
      { path: 'images/img.tar', size: 10, sha256: HEX_A },
      { path: 'npm/p.tgz', size: 10, sha256: HEX_B },
      { path: 'sbom/s.json', size: 1, sha256: HEX_A },
    ],
  };
}

t.test('manifest validation accepts a good manifest and names each issue of a bad one', async (t) => {
  t.equal(validateManifest(goodManifest()).name, 'tcpao-proxy');

  const bad = goodManifest();
  (bad.images as Array<Record<string, unknown>>)[0]!.imageId = 'sha256:nothex';
  (bad.images as Array<Record<string, unknown>>)[0]!.file = 'images/other.tar';
  (bad.files as Array<Record<string, unknown>>)[1]!.size = -1;
  bad.signature = { method: 'pgp' };
  let caught: unknown;
  try {
    validateManifest(bad);
  } catch (err) {
    caught = err;
  }
  t.ok(hasCode(caught, 'ERR_TCPAO_BUNDLE_MANIFEST_INVALID'), 'refused with the manifest code');
  const message = (caught as Error).message;
  t.match(message, /images\[0\]\.imageId/);
  t.match(message, /images\[0\]\.file \(images\/other\.tar\) is not in files/);
  t.match(message, /files\[1\]\.size/);
  t.match(message, /signature\.method/);

  const signedListsSig = goodManifest();
  signedListsSig.signature = { method: 'cosign-blob', signedFile: 'SHA256SUMS', signatureFile: 'sbom/s.json' };
  t.throws(() => validateManifest(signedListsSig), { message: /signatureFile must not be in files/ });
  t.throws(() => parseManifest('{'), { code: 'ERR_TCPAO_BUNDLE_MANIFEST_INVALID', message: /not valid JSON/ });
  t.throws(() => parseManifest('[]'), { code: 'ERR_TCPAO_BUNDLE_MANIFEST_INVALID', message: /manifest must be an object/ });
});

t.test('the pinned image list', async (t) => {
  const repoList = join(__dirname, '..', '..', '..', 'deploy', 'images', 'images.json');
  const images = readImageList(repoList);
  t.same(images.map((i) => i.name).sort(), ['gobgp-stunnel-tcpao', 'gobmp-tls-tcpao'], 'the repository pins both images');
  for (const image of images) t.not(image.tag, 'latest', `${image.name} is pinned`);
  t.equal(readImageList(repoList, 'registry.lab.internal:5000/tcpao')[0]?.ref.startsWith('registry.lab.internal:5000/tcpao/'), true, 'the registry can be overridden');

  const dir = scratch(t);
  const write = (body: unknown): string => {
    const path = join(dir, 'images.json');
    writeFileSync(path, JSON.stringify(body));
    return path;
  };
  t.throws(() => readImageList(write({ registry: 'r.example/x', images: [{ name: 'a', tag: 'latest', role: 'x' }] })), { code: 'ERR_TCPAO_BUNDLE_IMAGE_LIST', message: /pin a version/ });
  t.throws(() => readImageList(write({ registry: 'https://r.example/x', images: [{ name: 'a', tag: '1', role: 'x' }] })), { code: 'ERR_TCPAO_BUNDLE_IMAGE_LIST', message: /no scheme/ });
  t.throws(() => readImageList(write({ registry: 'r.example/x', images: [] })), { code: 'ERR_TCPAO_BUNDLE_IMAGE_LIST' });
  t.throws(() => readImageList(join(dir, 'absent.json')), { code: 'ERR_TCPAO_BUNDLE_IMAGE_LIST', message: /cannot read/ });

  for (const good of ['registry.lab.internal/tcpao', 'localhost:5000/a/b', '10.0.0.5:443/x']) t.ok(isRegistryPrefix(good), good);
  for (const bad of ['http://r/x', 'r/x/', 'r/X', 'r/x:tag', '']) t.notOk(isRegistryPrefix(bad), JSON.stringify(bad));
});

t.test('docker load and push output parsing', async (t) => {
  t.same(
    parseLoadOutput('Loaded image: ghcr.io/o/gobmp-tls-tcpao:0.1.0\nLoaded image ID: sha256:' + HEX_A + '\nsomething else\n'),
    ['ghcr.io/o/gobmp-tls-tcpao:0.1.0', `sha256:${HEX_A}`],
  );
  t.same(parseLoadOutput(''), []);
  t.equal(parsePushDigest(`0.1.0: digest: sha256:${HEX_B} size: 1234\n`), `sha256:${HEX_B}`);
  t.equal(parsePushDigest('no digest here'), null);
});
