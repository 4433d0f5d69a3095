/**
 * The publish workflows follow the deployment spec's section 10, the test
 * workflow runs the project's test command, actions are pinned, and the
 * Makefile targets are thin aliases of npm scripts.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const WORKFLOWS = path.join(ROOT, '.github', 'workflows');

type Doc = Record<string, any>;
interface Step {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Record<string, unknown>;
  readonly env?: Record<string, string>;
}

function load(file: string): { text: string; doc: Doc } {
  const text = readFileSync(path.join(WORKFLOWS, file), 'utf8');
  return { text, doc: YAML.parse(text, { uniqueKeys: true }) as Doc };
}

function allSteps(doc: Doc): Step[] {
  return Object.values(doc.jobs as Record<string, Doc>).flatMap((job) => job.steps as Step[]);
}

function indexOf(steps: Step[], predicate: (step: Step) => boolean, what: string): number {
  const index = steps.findIndex(predicate);
  if (index < 0) throw new Error(`no step that ${what}`);
  return index;
}

function checkPinnedActions(t: Test, steps: Step[]): void {
  for (const step of steps.filter((s) => s.uses !== undefined)) {
    t.match(step.uses, /^[\w.-]+\/[\w.-]+@v\d+\.\d+\.\d+$/, `${step.uses} is pinned to an exact release`);
  }
}

for (const [file, image] of [
  ['publish_gobmp_tls_tcpao.yml', 'gobmp-tls-tcpao'],
  ['publish_gobgp_stunnel_tcpao.yml', 'gobgp-stunnel-tcpao'],
] as const) {
  t.test(file, async (t) => {
    const { text, doc } = load(file);
    t.same(Object.keys(doc.on), ['workflow_dispatch']);
    t.equal(doc.on.workflow_dispatch.inputs.image_tag.required, true, 'image_tag input is required');
    t.same(doc.permissions, { contents: 'read', packages: 'write' }, 'least privilege: read code, write packages');
    t.equal(doc.env.REGISTRY, 'ghcr.io');
    t.match(doc.env.IMAGE_NAME, new RegExp(`/${image}$`));

    const steps = allSteps(doc);
    checkPinnedActions(t, steps);
    const checkout = indexOf(steps, (s) => s.uses?.startsWith('actions/checkout@') === true, 'checks out');
    const buildSidecar = indexOf(steps, (s) => /npm ci/.test(s.run ?? '') && /npm run build/.test(s.run ?? ''), 'builds the sidecar');
    const testSidecar = indexOf(steps, (s) => /^make test$/m.test(s.run ?? ''), 'tests the sidecar');
    const login = indexOf(steps, (s) => s.uses?.startsWith('docker/login-action@') === true, 'logs in');
    const build = indexOf(steps, (s) => s.uses?.startsWith('docker/build-push-action@') === true, 'builds and pushes');
    const summary = indexOf(steps, (s) => /GITHUB_STEP_SUMMARY/.test(s.run ?? ''), 'writes the summary');
    t.ok(checkout < buildSidecar && buildSidecar < testSidecar && testSidecar < build, 'checkout, build, test, then image');
    t.ok(login < build && build < summary, 'login before push, summary after');

    t.equal(steps[login]?.with?.registry, '${{ env.REGISTRY }}');
    t.equal(steps[login]?.with?.password, '${{ secrets.GITHUB_TOKEN }}', 'the job token, no stored credential');
    const pushed = steps[build]?.with ?? {};
    const stage = indexOf(steps, (s) => /scripts\/build-images --context-only/.test(s.run ?? ''), 'stages the build context');
    t.ok(testSidecar < stage && stage < build, 'the context is staged after the tests, before the build');
    t.match(steps[stage]?.run, /GITHUB_OUTPUT/, 'the staged directory is a step output');
    t.equal(pushed.context, '${{ steps.context.outputs.dir }}', 'builds in the staged context');
    t.equal(pushed.file, `\${{ steps.context.outputs.dir }}/deploy/images/${image}/Dockerfile`);
    const buildArgs = String(pushed['build-args']).trim().split('\n');
    t.same(buildArgs, ['BUILD_BASE=node:20.20.2-bookworm', 'RUNTIME_BASE=node:20.20.2-bookworm-slim'], 'the official bases, same Node as the local ones');
    t.equal(pushed.push, true);
    const meta = steps.find((s) => s.uses?.startsWith('docker/metadata-action@'));
    t.match(String(meta?.with?.tags), /type=raw,value=\$\{\{ github\.event\.inputs\.image_tag \}\}/, 'tags the requested image_tag');
    t.match(String(meta?.with?.tags), /type=raw,value=latest/, 'and latest');
    t.equal(pushed.tags, '${{ steps.meta.outputs.tags }}');

    const summaryStep = steps[summary] as Step;
    t.equal(summaryStep.env?.DIGEST, '${{ steps.build.outputs.digest }}', 'the digest reaches the summary');
    t.match(summaryStep.run, /\$DIGEST/);
    t.notMatch(summaryStep.run, /\$\{\{/, 'no expression expanded inside the shell script');
    t.notMatch(text, /TCPAO_KEY/, 'no AO key in CI');
  });
}

t.test('test.yml runs the project test command on pushes and pull requests', async (t) => {
  const { doc } = load('test.yml');
  t.ok('push' in doc.on && 'pull_request' in doc.on);
  t.same(doc.permissions, { contents: 'read' });
  const steps = allSteps(doc);
  checkPinnedActions(t, steps);
  const install = indexOf(steps, (s) => /npm ci/.test(s.run ?? ''), 'installs');
  const test = indexOf(steps, (s) => /^make test$/m.test(s.run ?? ''), 'runs make test');
  t.ok(install < test);
  const node = steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
  t.match(String(node?.with?.['node-version']), /^20\.\d+\.\d+$/, 'Node 20, pinned');
});

t.test('Makefile targets are thin aliases of npm scripts', async (t) => {
  const makefile = readFileSync(path.join(ROOT, 'Makefile'), 'utf8');
  const targets = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of makefile.split('\n')) {
    const target = /^([a-z][\w-]*):\s*$/.exec(line);
    if (target !== null) {
      current = target[1] as string;
      targets.set(current, []);
    } else if (line.startsWith('\t') && current !== undefined) {
      targets.get(current)?.push(line.slice(1));
    }
  }
  const expected: Record<string, string> = {
    test: 'npm test',
    'test-functional-strict': 'npm run test:functional',
    doctor: 'npm run doctor',
    demo: 'npm run demo',
    images: 'npm run --silent images',
  };
  for (const [target, command] of Object.entries(expected)) t.same(targets.get(target), [command], `make ${target} -> ${command}`);
  t.match(makefile, /^\.PHONY: test test-functional-strict doctor demo$/m);
});
