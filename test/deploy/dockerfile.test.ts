/**
 * Static checks of the two combined images: the Dockerfiles are read, not
 * built (test/deploy/images.test.ts builds and starts them in a real engine).
 * Every base resolves offline (a local base, a stage or scratch), sources exist
 * or are staged by scripts/build-images, the entrypoint and everything it
 * calls are in the image layout, the pinned APP_CMD matches the entrypoint, no
 * secret is baked in and the runtime stage carries no compiler.
 */
import t, { type Test } from 'tap';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Copy, type Instruction, type Stage, execForm, expandArgs, filesUnder, globalArgs, parseCopy, parseDockerfile, stages } from './dockerfile.js';

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

/** Context entries scripts/build-images stages beside the repository files. */
const STAGED_INPUTS = ['npm-cache', 'apps/'];
/** The unprivileged users the entrypoint hands the sidecar and the app to. */
const USERS = [
  { name: 'tcpao-proxy', uid: 10001 },
  { name: 'tcpao-app', uid: 10002 },
];

function bashArray(script: string, name: string): string[] {
  const text = readFileSync(path.join(ROOT, 'scripts', script), 'utf8');
  const match = new RegExp(`^readonly ${name}=\\(([^)]*)\\)`, 'm').exec(text);
  if (match === null) throw new Error(`scripts/${script} has no ${name} array`);
  return (match[1] as string).split(/\s+/).filter((word) => word !== '');
}

function bashValue(script: string, name: string): string {
  const text = readFileSync(path.join(ROOT, 'scripts', script), 'utf8');
  const match = new RegExp(`^readonly ${name}="?([^"\\s]*)"?$`, 'm').exec(text);
  if (match === null) throw new Error(`scripts/${script} has no ${name}`);
  return match[1] as string;
}

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

function load(spec: ImageSpec): { text: string; instructions: Instruction[]; args: Map<string, string>; stages: Stage[] } {
  const text = readFileSync(path.join(ROOT, 'deploy', 'images', spec.dir, 'Dockerfile'), 'utf8');
  const instructions = parseDockerfile(text);
  return { text, instructions, args: globalArgs(instructions), stages: stages(instructions) };
}

function runtimeOf(all: Stage[]): Stage {
  return all[all.length - 1] as Stage;
}

/** The packages the runtime stage requires (its `for pkg in ...` check). */
function runtimePackages(stage: Stage): string[] {
  return stage.instructions
    .filter((i) => i.keyword === 'RUN' && /apt-get install/.test(i.args))
    .flatMap((i) => (/for pkg in ([^;]+); do/.exec(i.args)?.[1] ?? '').split(' ').filter((word) => word !== ''));
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
  for (const pkg of runtimePackages(runtime)) for (const file of PACKAGE_FILES[pkg] ?? []) add(file);
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

/** scripts/build-images copies these repository paths into the build context. */
function stagedByBuildImages(source: string): boolean {
  return bashArray('build-images', 'CONTEXT_PATHS').some((entry) => source === entry || source.replace(/\/$/, '') === entry || source.startsWith(`${entry}/`));
}

for (const spec of IMAGES) {
  t.test(spec.dir, async (t: Test) => {
    const { stages: all } = load(spec);
    const names = new Map<string, Stage>();
    const runtime = runtimeOf(all);

    t.test('every FROM resolves with no pull: a local base, a stage or scratch', async (t) => {
      t.notMatch(load(spec).text, /^#\s*syntax\s*=/im, 'no # syntax= directive (BuildKit would pull its frontend)');
      t.ok(all.length >= 3, 'multi-stage');
      const { args } = load(spec);
      for (const stage of all) {
        const image = expandArgs(stage.image, args);
        t.notMatch(image, /\$/, `${stage.image}: every ARG it uses has a default`);
        if (image === 'scratch' || names.has(image)) {
          if (stage.name !== undefined) names.set(stage.name, stage);
          continue;
        }
        t.match(image, /^tcpao-local\//, `${stage.image} defaults to a local base (${image})`);
        const tag = /:([^/:@]+)$/.exec(image)?.[1];
        t.not(tag, 'latest', `${image}: not :latest`);
        t.match(tag ?? '', /\d+\.\d+/, `${image}: the tag is a version, not a moving alias`);
        if (stage.name !== undefined) names.set(stage.name, stage);
      }
      t.equal(expandArgs('${APPS_IMAGE}', args), 'apps-context', 'apps come from the build context by default');
      t.ok(names.has('apps-context') && names.has('apps'), 'an apps-context stage and the apps stage it feeds');
    });

    t.test('the default bases are the ones scripts/build-base-images makes, on one Node version', async (t) => {
      const { args } = load(spec);
      const node = bashValue('build-base-images', 'NODE_VERSION') || '';
      const suite = bashValue('build-base-images', 'SUITE') || '';
      t.equal(args.get('BUILD_BASE'), `tcpao-local/node:${node}-${suite}`, 'BUILD_BASE default');
      t.equal(args.get('RUNTIME_BASE'), `tcpao-local/node:${node}-${suite}-slim`, 'RUNTIME_BASE default');
      t.equal(expandArgs(names.get('sidecar-build')?.image ?? '', args), args.get('BUILD_BASE'), 'sidecar-build is on BUILD_BASE');
      t.equal(expandArgs(runtime.image, args), args.get('RUNTIME_BASE'), 'the runtime is on RUNTIME_BASE');
      const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
      t.match(node, /^20\.\d+\.\d+$/, `Node ${node} satisfies engines.node ${packageJson.engines.node}`);
    });

    t.test('the build stage runs npm ci from the staged cache, node-gyp on local headers, tsc, prune', async (t) => {
      const build = names.get('sidecar-build')?.instructions ?? [];
      const runs = build.filter((i) => i.keyword === 'RUN').map((i) => i.args).join(' && ');
      for (const step of [/npm ci \$NPM_FLAGS --cache \/tmp\/npm-cache\b/, /node-gyp rebuild --nodedir=\/usr\/local/, /tsc -p tsconfig\.json/, /npm prune --omit=dev/]) t.match(runs, step);
      const npmFlags = build.find((i) => i.keyword === 'ARG' && i.args.startsWith('NPM_FLAGS='));
      t.equal(npmFlags?.args, 'NPM_FLAGS=--offline', 'npm ci is offline by default');
    });

    t.test('every COPY source exists in the repository or in a named stage', async (t) => {
      for (const stage of all) {
        for (const instruction of stage.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
          t.equal(instruction.keyword, 'COPY', `line ${instruction.line}: COPY, not ADD`);
          const copy: Copy = parseCopy(instruction);
          t.ok(copy.sources.length > 0, `line ${copy.line}: has sources`);
          if (copy.from === undefined) {
            for (const source of copy.sources) {
              if (STAGED_INPUTS.includes(source)) continue;
              t.ok(existsSync(path.join(ROOT, source)), `line ${copy.line}: ${source} exists in the repo`);
              t.ok(stagedByBuildImages(source), `line ${copy.line}: ${source} is staged into the context by scripts/build-images`);
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

    t.test('ENTRYPOINT is the role entrypoint (it execs tini once the key is staged), present in the image layout', async (t) => {
      const layout = imageLayout(all);
      const entrypoints = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT');
      t.equal(entrypoints.length, 1, 'one ENTRYPOINT');
      const argv = execForm(entrypoints[0] as (typeof entrypoints)[number]);
      t.same(argv, [`/opt/tcpao-proxy/deploy/entrypoint/${spec.role}.sh`]);
      t.ok(layout.has('/usr/bin/tini'), 'tini, which the entrypoint execs, is in the image');
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

    t.test('runtime packages: the spec set, all in the local runtime base, no compilers', async (t) => {
      const packages = runtimePackages(runtime);
      for (const pkg of ['ca-certificates', 'iproute2', 'tini', ...spec.appPackages]) t.ok(packages.includes(pkg), `requires ${pkg}`);
      for (const pkg of packages) t.notMatch(pkg, COMPILERS, `runtime does not install ${pkg}`);
      const baked = bashArray('build-base-images', 'RUNTIME_PACKAGES');
      for (const pkg of packages) t.ok(baked.includes(pkg), `${pkg} is in the local runtime base, so the offline build installs nothing`);
      for (const pkg of baked) t.notMatch(pkg, COMPILERS, `the local runtime base carries no ${pkg}`);
      const installs = runtime.instructions.filter((i) => i.keyword === 'RUN' && /apt-get install/.test(i.args));
      t.equal(installs.length, 1, 'one package step');
      for (const run of installs) {
        t.match(run.args, /if \[ -n "\$missing" \]; then apt-get update/, `line ${run.line}: apt runs only for packages the base lacks`);
        t.match(run.args, /--no-install-recommends/, `line ${run.line}: --no-install-recommends`);
        t.match(run.args, /rm -rf \/var\/lib\/apt\/lists/, `line ${run.line}: apt lists removed`);
      }
      t.notOk(runtime.instructions.some((i) => i.keyword === 'RUN' && /\b(npm ci|node-gyp|tsc)\b/.test(i.args)), 'no build steps in the runtime stage');
    });

    t.test('APP_CMD is pinned in the image and is the entrypoint\'s default', async (t) => {
      const env = runtime.instructions.filter((i) => i.keyword === 'ENV' && i.args.startsWith('APP_CMD='));
      t.equal(env.length, 1, 'one ENV APP_CMD');
      const pinned = /^APP_CMD="([^"]+)"$/.exec(env[0]?.args ?? '')?.[1];
      t.equal(pinned, defaultAppCmd(spec.role), 'the same command the entrypoint falls back to');
    });

    t.test('the sidecar and app users exist with fixed uids', async (t) => {
      const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join(' && ');
      for (const user of USERS) {
        t.match(runs, new RegExp(`groupadd --system --gid ${user.uid} ${user.name}\\b`), `group ${user.name} (${user.uid})`);
        t.match(runs, new RegExp(`useradd --system --uid ${user.uid} --gid ${user.name} .*--shell /usr/sbin/nologin ${user.name}\\b`), `user ${user.name} (${user.uid}), no login shell`);
      }
    });

    t.test('no secret in ENV, ARG or LABEL', async (t) => {
      // Global ARGs (before the first FROM) included.
      const every = load(spec).instructions;
      for (const instruction of every.filter((i) => ['ENV', 'ARG', 'LABEL'].includes(i.keyword))) {
        const names = [...instruction.args.matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_.]*)(?==|\s|$)/g)].map((m) => m[1] as string);
        for (const name of names) t.notMatch(name, SECRET_NAME, `line ${instruction.line}: ${instruction.keyword} ${name} does not look like a secret`);
      }
      const instructions = every.map((i) => `${i.keyword} ${i.args}`).join('\n');
      t.notMatch(instructions, /TCPAO_KEY/, 'no instruction mentions TCPAO_KEY');
    });
  });
}
