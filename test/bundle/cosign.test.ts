import t, { type Test } from 'tap';
import { chmodSync, existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../../src/bundle/load.js';
import type { Manifest } from '../../src/bundle/manifest.js';
import { prepareBundle } from '../../src/bundle/prepare.js';
import { FakeImageTool } from './fake-image-tool.js';
import { absentCosign, copyBundle, IMAGE_LIST, prepareFixture, readJson, REPO_ROOT, rewriteReadmeConsistently, scratch, sha256 } from './fixture.js';
import { COSIGN_PASSWORD, cosignCli, findCosign, generateKeyPair } from './real-cosign.js';

/*
 * Real cosign (see real-cosign.ts for where it is found) signs and verifies;
 * the image store is the fake one, so this runs without a Docker engine. A
 * thin wrapper in front of cosign records its argv and whether
 * COSIGN_PASSWORD reached it, then runs the real binary.
 */
function main(realCosign: string): void {
  const tools = scratch(t, 'tcpao-cosign-');
  const log = join(tools, 'calls.jsonl');
  writeFileSync(
    join(tools, 'cosign'),
    `#!${process.execPath}
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ args, password: process.env.COSIGN_PASSWORD === ${JSON.stringify(COSIGN_PASSWORD)} }) + '\\n');
const result = spawnSync(${JSON.stringify(realCosign)}, args, { stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
`,
  );
  chmodSync(join(tools, 'cosign'), 0o755);
  const recorded = join(tools, 'cosign');
  const keys = generateKeyPair(t, realCosign, 'site');
  const otherKeys = generateKeyPair(t, realCosign, 'other');
  const cosign = cosignCli(recorded);
  const fixture = keys.then((k) => prepareFixture(t, { cosign, cosignKey: k.key }));

  async function load(t: Test, dir: string, opts: { cosignKey?: string; requireSignature?: boolean; useCosign?: boolean } = {}) {
    const target = new FakeImageTool();
    const report = await loadBundle(dir, {
      imageTool: target,
      cosign: opts.useCosign === false ? absentCosign(t) : cosign,
      cosignKey: opts.cosignKey,
      requireSignature: opts.requireSignature,
      log: () => undefined,
    });
    return { report, target };
  }

  t.test('prepare signs SHA256SUMS; the password reaches cosign only through the environment', async (t) => {
    const { dir, manifest, log: lines } = await fixture;
    const { key: privateKey } = await keys;
    t.same(manifest.signature, { method: 'cosign-blob', signedFile: 'SHA256SUMS', signatureFile: 'SHA256SUMS.sig' });
    t.ok(existsSync(join(dir, 'SHA256SUMS.sig')));
    t.ok(lines.some((l) => l === 'signing SHA256SUMS with cosign'));
    t.match(readFileSync(join(dir, 'README.txt'), 'utf8'), /This bundle is signed/);
    const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; password: boolean });
    const sign = calls.find((c) => c.args[0] === 'sign-blob');
    t.same(sign?.args.slice(0, 5), ['sign-blob', '--yes', '--key', privateKey, '--tlog-upload=false']);
    t.equal(sign?.password, true, 'COSIGN_PASSWORD was in the environment');
    t.notOk(calls.some((c) => c.args.some((a) => a.includes(COSIGN_PASSWORD))), 'the password is never in argv');
  });

  t.test('load verifies the signature with the public key', async (t) => {
    const { dir } = await fixture;
    const { report, target } = await load(t, dir, { cosignKey: (await keys).pub, requireSignature: true });
    t.same(report.problems, []);
    t.equal(report.signature.state, 'verified');
    t.match(report.signature.detail, /signature verified by cosign/);
    t.equal(target.calls.filter((c) => c.startsWith('load ')).length, 2);
  });

  t.test('a wrong key is refused and nothing is loaded', async (t) => {
    const { dir } = await fixture;
    const { report, target } = await load(t, dir, { cosignKey: (await otherKeys).pub });
    t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_SIGNATURE_INVALID', 'SHA256SUMS.sig']]);
    t.match(report.problems[0]?.message, /cosign verify-blob rejected the signature over SHA256SUMS: .*invalid signature/);
    t.equal(report.signature.state, 'invalid');
    t.same(target.calls, []);
  });

  t.test('without a key the signature is reported as not checked, never as verified', async (t) => {
    const { dir } = await fixture;
    const loose = await load(t, dir);
    t.same(loose.report.problems, []);
    t.equal(loose.report.signature.state, 'unchecked');
    t.match(loose.report.signature.detail, /signature present but NOT checked: no --cosign-key was given/);

    const strict = await load(t, dir, { requireSignature: true });
    t.same(strict.report.problems.map((p) => p.code), ['ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED']);
    t.same(strict.target.calls, []);

    const noCosign = await load(t, dir, { cosignKey: (await keys).pub, useCosign: false });
    t.same(noCosign.report.problems.map((p) => [p.code, p.message]), [['ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED', '--cosign-key was given but cosign is not on PATH']]);
    t.same(noCosign.target.calls, []);
  });

  t.test('rewriting both lists consistently is caught by the signature', async (t) => {
    const { dir } = await fixture;
    const copy = copyBundle(t, dir);
    rewriteReadmeConsistently(copy);

    const { report, target } = await load(t, copy, { cosignKey: (await keys).pub });
    t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_SIGNATURE_INVALID', 'SHA256SUMS.sig']]);
    t.same(target.calls, []);
  });

  t.test('stripping the signature is caught when a key is given', async (t) => {
    const { dir } = await fixture;
    const missing = copyBundle(t, dir);
    unlinkSync(join(missing, 'SHA256SUMS.sig'));
    const publicKey = (await keys).pub;
    const plainDelete = await load(t, missing, { cosignKey: publicKey });
    t.ok(plainDelete.report.problems.some((p) => p.code === 'ERR_TCPAO_BUNDLE_FILE_MISSING' && p.subject === 'SHA256SUMS.sig'));

    // A consistent downgrade: signature removed, manifest says unsigned, SHA256SUMS updated.
    const downgraded = copyBundle(t, dir);
    unlinkSync(join(downgraded, 'SHA256SUMS.sig'));
    const edited = readJson<Manifest>(join(downgraded, 'manifest.json'));
    const manifestBefore = sha256(readFileSync(join(downgraded, 'manifest.json')));
    (edited as { signature: unknown }).signature = { method: 'none', note: 'signature: none, checksums only' };
    writeFileSync(join(downgraded, 'manifest.json'), `${JSON.stringify(edited, null, 2)}\n`);
    const sums = join(downgraded, 'SHA256SUMS');
    writeFileSync(sums, readFileSync(sums, 'utf8').replace(manifestBefore, sha256(readFileSync(join(downgraded, 'manifest.json')))));
    const { report, target } = await load(t, downgraded, { cosignKey: publicKey });
    t.same(report.problems.map((p) => [p.code, p.message]), [['ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED', 'a signature check was asked for, but this bundle is not signed']]);
    t.same(target.calls, []);
  });

  t.test('with a wrong key password cosign refuses to sign: the password really is what COSIGN_PASSWORD carries', async (t) => {
    const dir = scratch(t, 'tcpao-badpass-');
    writeFileSync(join(dir, 'SHA256SUMS'), 'anything\n');
    await t.rejects(cosignCli(realCosign, 'not the password').signBlob((await keys).key, join(dir, 'SHA256SUMS'), join(dir, 'SHA256SUMS.sig')), {
      code: 'ERR_TCPAO_BUNDLE_COSIGN',
      message: /^cosign sign-blob failed \(exit 1\): /,
    });
    t.notOk(existsSync(join(dir, 'SHA256SUMS.sig')), 'no signature written');
  });
}

t.test('prepare with a key but no cosign stops before any docker step', async (t) => {
  const source = new FakeImageTool();
  await t.rejects(
    prepareBundle({
      repoRoot: REPO_ROOT,
      outDir: join(scratch(t, 'tcpao-nosign-'), 'b'),
      imageListPath: IMAGE_LIST,
      pull: false,
      cosignKey: join(scratch(t, 'tcpao-nocosign-key-'), 'cosign.key'),
      runPackScripts: false,
      imageTool: source,
      cosign: absentCosign(t),
      log: () => undefined,
    }),
    { code: 'ERR_TCPAO_BUNDLE_COSIGN', message: /--cosign-key was given but cosign is not on PATH/ },
  );
  t.same(source.calls, []);
});

const found = findCosign();
if ('path' in found) {
  main(found.path);
} else if (process.env.TCPAO_REQUIRE_COSIGN === '1') {
  t.fail(`TCPAO_REQUIRE_COSIGN=1 but ${found.reason}`);
} else {
  t.pass('signing and verifying need cosign', { skip: found.reason });
}
