/**
 * Static checks of the two combined images. No Docker engine runs here, so
 * the Dockerfiles are read, not built: sources exist, bases are pinned, the
 * entrypoint and everything it calls are in the image layout, no secret is
 * baked in and the runtime stage carries no compiler.
 */
import t, { type Test } from 'tap';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Copy, Stage, execForm, filesUnder, parseCopy, parseDockerfile, stages } from './dockerfile';

const ROOT = path.resolve(__dirname, '..', '..', '..');

interface ImageSpec {
  readonly dir: string;
  readonly role: 'initiator' | 'terminator';
  readonly appPackages: readonly string[];
  /** Files the role's default APP_CMD needs. */
  readonly appFiles: readonly string[];
}

const IMAGES: readonly ImageSpec[] = [
  { dir: 'gobgp-stunnel-tcpao', role: 'initiator', appPackages: ['stunnel4'], appFiles: ['/usr/local/bin/gobgpd', '/usr/local/bin/gobgp', '/etc/gobgp/gobgpd.toml'] },
  { dir: 'gobmp-tls-tcpao', role: 'terminator', appPackages: ['nftables'], appFiles: ['/usr/local/bin/gobmp'] },
];

/** Files the Debian packages the runtime installs put where the image uses them. */
const PACKAGE_FILES: Readonly<Record<string, readonly string[]>> = {
  tini: ['/usr/bin/tini'],
  iproute2: ['/usr/bin/ip', '/usr/bin/ss'],
  nftables: ['/usr/sbin/nft'],
  stunnel4: ['/usr/bin/stunnel4'],
};

/** What the sidecar build stage produces beyond what it copies in. */
const BUILD_OUTPUTS = ['dist', 'build', 'node_modules'];
const COMPILERS = /^(gcc|g\+\+|cpp|make|cmake|clang|build-essential|python3|python3-dev|libc6-dev)$/;
const SECRET_NAME = /KEY|SECRET|PASS|TOKEN|CREDENTIAL|PRIVATE/i;

function load(spec: ImageSpec): { stages: Stage[] } {
  const text = readFileSync(path.join(ROOT, 'deploy', 'images', spec.dir, 'Dockerfile'), 'utf8');
  return { stages: stages(parseDockerfile(text)) };
}

function runtimeOf(all: Stage[]): Stage {
  return all[all.length - 1] as Stage;
}

function aptPackages(stage: Stage): string[] {
  return stage.instructions
    .filter((i) => i.keyword === 'RUN' && /apt-get install/.test(i.args))
    .flatMap((i) => {
      const after = i.args.split('apt-get install')[1] as string;
      const command = after.split('&&')[0] as string;
      return command.split(' ').filter((word) => word !== '' && !word.startsWith('-'));
    });
}

function workdirAt(stage: Stage, line: number): string {
  let dir = '/';
  for (const instruction of stage.instructions) {
    if (instruction.line > line) break;
    if (instruction.keyword === 'WORKDIR') dir = path.posix.resolve(dir, instruction.args);
  }
  return dir;
}

/** Absolute paths that exist in the final image, from COPY, apt packages and ln -s. */
function imageLayout(all: Stage[]): Set<string> {
  const runtime = runtimeOf(all);
  const layout = new Set<string>();
  const add = (file: string): void => {
    for (let current = file; current !== '/'; current = path.posix.dirname(current)) layout.add(current);
  };
  for (const instruction of runtime.instructions.filter((i) => i.keyword === 'COPY')) {
    const copy = parseCopy(instruction);
    const destination = path.posix.resolve(workdirAt(runtime, copy.line), copy.destination);
    const intoDirectory = copy.destination.endsWith('/') || copy.sources.length > 1;
    for (const source of copy.sources) {
      const target = intoDirectory ? path.posix.join(destination, path.posix.basename(source)) : destination;
      add(target);
      // sidecar-build copies bin/, src/ and native/ from the repository unchanged.
      const fromBuild = path.posix.relative('/build', source);
      const copiedUnchanged = copy.from === undefined || (copy.from === 'sidecar-build' && !BUILD_OUTPUTS.includes(fromBuild.split('/')[0] as string));
      const repoPath = path.join(ROOT, copy.from === undefined ? source : fromBuild);
      if (copiedUnchanged && existsSync(repoPath) && statSync(repoPath).isDirectory()) {
        for (const file of filesUnder(repoPath)) add(path.posix.join(target, file.split(path.sep).join('/')));
      }
    }
  }
  for (const pkg of aptPackages(runtime)) for (const file of PACKAGE_FILES[pkg] ?? []) add(file);
  for (const instruction of runtime.instructions.filter((i) => i.keyword === 'RUN')) {
    for (const match of instruction.args.matchAll(/ln -s(?:f)? (\S+) (\S+)/g)) add(match[2] as string);
  }
  return layout;
}

function defaultAppCmd(role: string): string {
  const script = readFileSync(path.join(ROOT, 'deploy', 'entrypoint', `${role}.sh`), 'utf8');
  const match = /^readonly DEFAULT_APP_CMD='([^']+)'$/m.exec(script);
  if (match === null) throw new Error(`${role}.sh has no DEFAULT_APP_CMD`);
  return match[1] as string;
}

function dockerignoreAllows(spec: ImageSpec, source: string): boolean {
  const lines = readFileSync(path.join(ROOT, 'deploy', 'images', spec.dir, 'Dockerfile.dockerignore'), 'utf8').split('\n');
  const allowed = lines.filter((line) => line.startsWith('!')).map((line) => line.slice(1).replace(/\/$/, ''));
  return allowed.some((entry) => source === entry || source.startsWith(`${entry}/`));
}

for (const spec of IMAGES) {
  t.test(spec.dir, async (t: Test) => {
    const { stages: all } = load(spec);
    const names = new Map<string, Stage>();
    const runtime = runtimeOf(all);

    t.test('FROM lines are pinned versions; node build and slim runtime share one version', async (t) => {
      t.ok(all.length >= 2, 'multi-stage');
      for (const stage of all) {
        if (names.has(stage.image)) continue;
        t.notMatch(stage.image, /\$/, `${stage.image}: no ARG in FROM`);
        const tag = /:([^/:@]+)(@sha256:[0-9a-f]{64})?$/.exec(stage.image)?.[1];
        t.ok(tag !== undefined, `${stage.image}: has a tag`);
        t.not(tag, 'latest', `${stage.image}: not :latest`);
        t.match(tag ?? '', /\d+\.\d+/, `${stage.image}: the tag is a version, not a moving alias`);
        if (stage.name !== undefined) names.set(stage.name, stage);
      }
      const build = names.get('sidecar-build');
      t.ok(build, 'a sidecar-build stage');
      const buildVersion = /^node:(20\.\d+\.\d+)-bookworm$/.exec(build?.image ?? '')?.[1];
      const runtimeVersion = /^node:(20\.\d+\.\d+)-bookworm-slim$/.exec(runtime.image)?.[1];
      t.ok(buildVersion, `build stage on node:20.x.y-bookworm (${build?.image})`);
      t.ok(runtimeVersion, `runtime on node:20.x.y-bookworm-slim (${runtime.image})`);
      t.equal(buildVersion, runtimeVersion, 'same Node version in build and runtime');
    });

    t.test('the build stage runs npm ci, node-gyp rebuild, tsc and prunes dev dependencies', async (t) => {
      const runs = (names.get('sidecar-build')?.instructions ?? []).filter((i) => i.keyword === 'RUN').map((i) => i.args).join(' && ');
      for (const step of [/npm ci\b/, /node-gyp rebuild/, /tsc -p tsconfig\.json/, /npm prune --omit=dev/]) t.match(runs, step);
    });

    t.test('every COPY source exists in the repository or in a named stage', async (t) => {
      for (const stage of all) {
        for (const instruction of stage.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
          t.equal(instruction.keyword, 'COPY', `line ${instruction.line}: COPY, not ADD`);
          const copy: Copy = parseCopy(instruction);
          t.ok(copy.sources.length > 0, `line ${copy.line}: has sources`);
          if (copy.from === undefined) {
            for (const source of copy.sources) {
              t.ok(existsSync(path.join(ROOT, source)), `line ${copy.line}: ${source} exists in the repo`);
              t.ok(dockerignoreAllows(spec, source), `line ${copy.line}: ${source} is not excluded by Dockerfile.dockerignore`);
            }
            continue;
          }
          const from = names.get(copy.from);
          t.ok(from, `line ${copy.line}: --from=${copy.from} is a named stage`);
          if (copy.from === 'sidecar-build' && from !== undefined) {
            const inputs = from.instructions
              .filter((i) => i.keyword === 'COPY')
              .flatMap((i) => {
                const c = parseCopy(i);
                return c.sources.length > 1 || c.destination.endsWith('/') ? c.sources.map((s) => path.posix.basename(s)) : [c.destination.replace(/^\.\//, '')];
              });
            for (const source of copy.sources) {
              const relative = path.posix.relative('/build', source);
              const top = relative.split('/')[0] as string;
              t.notMatch(relative, /^\.\./, `line ${copy.line}: ${source} is under the build WORKDIR`);
              t.ok(inputs.includes(top) || BUILD_OUTPUTS.includes(top), `line ${copy.line}: ${source} is copied in or built in sidecar-build`);
            }
          }
        }
      }
    });

    t.test('ENTRYPOINT runs tini, then the role entrypoint, all present in the image layout', async (t) => {
      const layout = imageLayout(all);
      const entrypoints = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT');
      t.equal(entrypoints.length, 1, 'one ENTRYPOINT');
      const argv = execForm(entrypoints[0] as (typeof entrypoints)[number]);
      t.same(argv, ['/usr/bin/tini', '--', `/opt/tcpao-proxy/deploy/entrypoint/${spec.role}.sh`]);
      for (const instruction of runtime.instructions.filter((i) => i.keyword === 'CMD' || i.keyword === 'ENTRYPOINT')) {
        for (const word of execForm(instruction).filter((w) => w.startsWith('/'))) t.ok(layout.has(word), `${word} is in the image`);
      }
      const script = path.join(ROOT, 'deploy', 'entrypoint', `${spec.role}.sh`);
      t.doesNotThrow(() => accessSync(script, constants.X_OK), `${spec.role}.sh is executable (COPY keeps the mode)`);

      const needed = [
        '/usr/local/bin/tcpao-proxy',
        '/opt/tcpao-proxy/bin/tcpao-proxy',
        '/opt/tcpao-proxy/dist/src',
        '/opt/tcpao-proxy/build/Release/tcpao.node',
        '/opt/tcpao-proxy/node_modules',
        '/opt/tcpao-proxy/package.json',
        '/opt/tcpao-proxy/scripts/render-config',
        '/opt/tcpao-proxy/deploy/entrypoint/common.sh',
        '/opt/tcpao-proxy/deploy/entrypoint/supervise.sh',
        `/etc/tcpao-proxy/${spec.role}.toml.tmpl`,
        ...spec.appFiles,
      ];
      for (const file of needed) t.ok(layout.has(file), `${file} is in the image`);
      const appBinary = defaultAppCmd(spec.role).split(' ')[0] as string;
      t.ok(layout.has(`/usr/local/bin/${appBinary}`), `the default APP_CMD's ${appBinary} is on PATH in the image`);
      t.notOk([...layout].some((file) => /config\.toml$/.test(file)), 'no rendered config baked in');
    });

    t.test('runtime packages: the spec set, no recommends, no compilers, lists cleaned', async (t) => {
      const packages = aptPackages(runtime);
      for (const pkg of ['ca-certificates', 'iproute2', 'tini', ...spec.appPackages]) t.ok(packages.includes(pkg), `installs ${pkg}`);
      for (const pkg of packages) t.notMatch(pkg, COMPILERS, `runtime does not install ${pkg}`);
      const installs = runtime.instructions.filter((i) => i.keyword === 'RUN' && /apt-get install/.test(i.args));
      for (const run of installs) {
        t.match(run.args, /--no-install-recommends/, `line ${run.line}: --no-install-recommends`);
        t.match(run.args, /rm -rf \/var\/lib\/apt\/lists/, `line ${run.line}: apt lists removed`);
      }
      t.notOk(runtime.instructions.some((i) => i.keyword === 'RUN' && /\b(npm ci|node-gyp|tsc)\b/.test(i.args)), 'no build steps in the runtime stage');
    });

    t.test('no secret in ENV, ARG or LABEL', async (t) => {
      for (const stage of all) {
        for (const instruction of stage.instructions.filter((i) => ['ENV', 'ARG', 'LABEL'].includes(i.keyword))) {
          const names = [...instruction.args.matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_.]*)(?==|\s|$)/g)].map((m) => m[1] as string);
          for (const name of names) t.notMatch(name, SECRET_NAME, `line ${instruction.line}: ${instruction.keyword} ${name} does not look like a secret`);
        }
      }
      const instructions = all.flatMap((stage) => stage.instructions.map((i) => `${i.keyword} ${i.args}`)).join('\n');
      t.notMatch(instructions, /TCPAO_KEY/, 'no instruction mentions TCPAO_KEY');
    });
  });
}
