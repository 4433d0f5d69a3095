import t, { type Test } from 'tap';
import { chmodSync, existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CosignCli } from '../../src/bundle/cosign.js';
import { loadBundle } from '../../src/bundle/load.js';
import type { Manifest } from '../../src/bundle/manifest.js';
import { prepareBundle } from '../../src/bundle/prepare.js';
import { FakeImageTool } from './fake-image-tool.js';
import { absentCosign, copyBundle, IMAGE_LIST, prepareFixture, readJson, REPO_ROOT, rewriteReadmeConsistently, scratch, sha256 } from './fixture.js';

/*
 * cosign is not installed here. A stand-in executable with cosign's command
 * line signs with an HMAC keyed by the key file's secret, so a changed
 * SHA256SUMS or a wrong key fails verification just as with real cosign.
 * It logs its argv and whether COSIGN_PASSWORD reached it.
 */
const PASSWORD = 'correct horse battery staple';
const tools = scratch(t, 'tcpao-cosign-');
const log = join(tools, 'calls.jsonl');
writeFileSync(
  join(tools, 'cosign'),
  `#!${process.execPath}
const fs = require('node:fs');
const crypto = require('node:crypto');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ args, password: process.env.COSIGN_PASSWORD === ${JSON.stringify(PASSWORD)} }) + '\\n');
const opt = (name) => args[args.indexOf(name) + 1];
const secret = (path, kind) => {
  const text = fs.readFileSync(path, 'utf8');
  if (!text.startsWith(kind + ':')) { process.stderr.write('Error: not a ' + kind + ' key\\n'); process.exit(1); }
  return text.slice(kind.length + 1);
};
const mac = (key, file) => crypto.createHmac('sha256', key).update(fs.readFileSync(file)).digest('base64');
const blob = args[args.length - 1];
if (args[0] === 'sign-blob') {
  fs.writeFileSync(opt('--output-signature'), mac(secret(opt('--key'), 'PRIVATE'), blob));
} else if (args[0] === 'verify-blob') {
  if (fs.readFileSync(opt('--signature'), 'utf8') !== mac(secret(opt('--key'), 'PUBLIC'), blob)) {
    process.stderr.write('Error: invalid signature when validating ASN.1 encoded signature\\n');
    process.exit(1);
  }
  process.stdout.write('Verified OK\\n');
} else { process.exit(2); }
`,
);
chmodSync(join(tools, 'cosign'), 0o755);
const privateKey = join(tools, 'cosign.key');
const publicKey = join(tools, 'cosign.pub');
const otherPublicKey = join(tools, 'other.pub');
writeFileSync(privateKey, 'PRIVATE:s3cret');
writeFileSync(publicKey, 'PUBLIC:s3cret');
writeFileSync(otherPublicKey, 'PUBLIC:another');

const cosign = new CosignCli('cosign', { PATH: `${tools}:${process.env.PATH ?? ''}`, COSIGN_PASSWORD: PASSWORD });
const fixture = prepareFixture(t, { cosign, cosignKey: privateKey });

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
  t.same(manifest.signature, { method: 'cosign-blob', signedFile: 'SHA256SUMS', signatureFile: 'SHA256SUMS.sig' });
  t.ok(existsSync(join(dir, 'SHA256SUMS.sig')));
  t.ok(lines.some((l) => l === 'signing SHA256SUMS with cosign'));
  t.match(readFileSync(join(dir, 'README.txt'), 'utf8'), /This bundle is signed/);
  const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; password: boolean });
  const sign = calls.find((c) => c.args[0] === 'sign-blob');
  t.same(sign?.args.slice(0, 5), ['sign-blob', '--yes', '--key', privateKey, '--tlog-upload=false']);
  t.equal(sign?.password, true, 'COSIGN_PASSWORD was in the environment');
  t.notOk(calls.some((c) => c.args.some((a) => a.includes(PASSWORD))), 'the password is never in argv');
});

t.test('load verifies the signature with the public key', async (t) => {
  const { dir } = await fixture;
  const { report, target } = await load(t, dir, { cosignKey: publicKey, requireSignature: true });
  t.same(report.problems, []);
  t.equal(report.signature.state, 'verified');
  t.match(report.signature.detail, /signature verified by cosign/);
  t.equal(target.calls.filter((c) => c.startsWith('load ')).length, 2);
});

t.test('a wrong key is refused and nothing is loaded', async (t) => {
  const { dir } = await fixture;
  const { report, target } = await load(t, dir, { cosignKey: otherPublicKey });
  t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_SIGNATURE_INVALID', 'SHA256SUMS.sig']]);
  t.match(report.problems[0]?.message, /invalid signature/);
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

  const noCosign = await load(t, dir, { cosignKey: publicKey, useCosign: false });
  t.same(noCosign.report.problems.map((p) => [p.code, p.message]), [['ERR_TCPAO_BUNDLE_SIGNATURE_UNCHECKED', '--cosign-key was given but cosign is not on PATH']]);
  t.same(noCosign.target.calls, []);
});

t.test('rewriting both lists consistently is caught by the signature', async (t) => {
  const { dir } = await fixture;
  const copy = copyBundle(t, dir);
  rewriteReadmeConsistently(copy);

  const { report, target } = await load(t, copy, { cosignKey: publicKey });
  t.same(report.problems.map((p) => [p.code, p.subject]), [['ERR_TCPAO_BUNDLE_SIGNATURE_INVALID', 'SHA256SUMS.sig']]);
  t.same(target.calls, []);
});

t.test('stripping the signature is caught when a key is given', async (t) => {
  const { dir } = await fixture;
  const missing = copyBundle(t, dir);
  unlinkSync(join(missing, 'SHA256SUMS.sig'));
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

t.test('prepare with a key but no cosign stops before any docker step', async (t) => {
  const source = new FakeImageTool();
  await t.rejects(
    prepareBundle({
      repoRoot: REPO_ROOT,
      outDir: join(scratch(t, 'tcpao-nosign-'), 'b'),
      imageListPath: IMAGE_LIST,
      pull: false,
      cosignKey: privateKey,
      runPackScripts: false,
      imageTool: source,
      cosign: absentCosign(t),
      log: () => undefined,
    }),
    { code: 'ERR_TCPAO_BUNDLE_COSIGN', message: /--cosign-key was given but cosign is not on PATH/ },
  );
  t.same(source.calls, []);
});
