/**
 * The publish workflows' supply-chain steps: an SBOM artifact, a vulnerability
 * gate before signing, and cosign signing only when a key secret is set, with
 * the key visible to no other step.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from './fixture.js';

interface Step {
  readonly name?: string;
  readonly id?: string;
  readonly if?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Record<string, unknown>;
  readonly env?: Record<string, string>;
}

const DIGEST_REF = '${{ env.REGISTRY }}/${{ env.IMAGE_NAME }}@${{ steps.build.outputs.digest }}';

for (const image of ['gobmp-tls-tcpao', 'gobgp-stunnel-tcpao']) {
  t.test(`publish_${image.replace(/-/g, '_')}.yml`, async (t) => {
    const text = readFileSync(join(REPO_ROOT, '.github', 'workflows', `publish_${image.replace(/-/g, '_')}.yml`), 'utf8');
    const doc = YAML.parse(text, { uniqueKeys: true }) as { env?: Record<string, string>; jobs: Record<string, { env?: Record<string, string>; steps: Step[] }> };
    const steps = Object.values(doc.jobs).flatMap((job) => job.steps);
    const at = (predicate: (s: Step) => boolean, what: string): number => {
      const index = steps.findIndex(predicate);
      t.ok(index >= 0, what);
      return index;
    };

    const build = at((s) => s.id === 'build', 'a build step with id build');
    const sbom = at((s) => s.uses?.startsWith('aquasecurity/trivy-action@') === true && s.with?.format === 'cyclonedx', 'a CycloneDX SBOM step');
    const upload = at((s) => s.uses?.startsWith('actions/upload-artifact@') === true, 'an artifact upload');
    const scan = at((s) => s.uses?.startsWith('aquasecurity/trivy-action@') === true && s.with?.['exit-code'] === '1', 'a failing vulnerability scan');
    const decide = at((s) => s.id === 'signing', 'a step that decides whether to sign');
    const install = at((s) => s.uses?.startsWith('sigstore/cosign-installer@') === true, 'installs cosign');
    const sign = at((s) => /cosign sign /.test(s.run ?? ''), 'signs');
    t.ok(build < sbom && sbom < upload && upload < scan && scan < decide && decide < install && install < sign, 'build, SBOM, upload, scan, then sign');

    t.equal(steps[sbom]?.with?.['image-ref'], DIGEST_REF, 'the SBOM describes the pushed digest');
    t.equal(steps[scan]?.with?.['image-ref'], DIGEST_REF, 'the scan covers the pushed digest');
    t.equal(steps[upload]?.with?.path, steps[sbom]?.with?.output, 'the uploaded file is the SBOM');
    t.equal(steps[upload]?.with?.['if-no-files-found'], 'error');
    t.match(String(steps[scan]?.with?.severity), /CRITICAL/);

    for (const guarded of [install, sign]) t.equal(steps[guarded]?.if, "steps.signing.outputs.enabled == 'true'", `${steps[guarded]?.name} runs only with a key`);
    t.match(steps[sign]?.run, /--key env:\/\/COSIGN_PRIVATE_KEY "\$IMAGE@\$DIGEST"/, 'signs by digest, key from the environment');
    t.notMatch(steps[sign]?.run, /\$\{\{/, 'no expression inside the shell script');

    const keyHolders = steps.filter((s) => Object.values(s.env ?? {}).some((v) => v.includes('secrets.COSIGN_PRIVATE_KEY')));
    t.same(keyHolders.map((s) => s.id ?? s.name), ['signing', steps[sign]?.name], 'only the check and the signing step see the key');
    t.notMatch(JSON.stringify(doc.env ?? {}), /secrets\./, 'no secret in the workflow env');
    for (const job of Object.values(doc.jobs)) t.notMatch(JSON.stringify(job.env ?? {}), /secrets\./, 'no secret in the job env');

    const status = steps[steps.length - 1] as Step;
    t.match(status.run, /Signature: none \(no COSIGN_PRIVATE_KEY secret configured\)/, 'an unsigned image is said to be unsigned');
  });
}
