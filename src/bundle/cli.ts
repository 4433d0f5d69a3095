import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CosignCli, type Cosign } from './cosign.js';
import { DockerCli, type ImageTool } from './image-tool.js';
import { isRegistryPrefix } from './image-list.js';
import { loadBundle } from './load.js';
import { prepareBundle } from './prepare.js';
import { checkReadiness, type Readiness } from './readiness.js';
import { formatProblem } from './verify-bundle.js';
import { commandHelp, parseCommandArgs, reportError, type CommandSpec, type OptionValues, type Program } from '../cli/command.js';
import { TcpAoError } from '../errors.js';

/*
 * Exit status: 0 done / ready; 1 the bundle was refused, an image is not
 * ready, or a docker, npm or cosign step failed; 2 the command line is wrong.
 */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CliDeps {
  readonly imageTool: ImageTool;
  readonly cosign: Cosign;
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** Source tree for prepare; defaults to the checkout this file was compiled in. */
  readonly repoRoot?: string;
  /** npm pack runs lifecycle scripts (tsc) unless a caller has just built. */
  readonly runPackScripts?: boolean;
}

const PREFIX = 'offline-bundle:';
const DEFAULT_REPO_ROOT = resolve(__dirname, '..', '..', '..');

/** Error lines read "offline-bundle: CODE text", like the problem lines (docs/air-gap.md). */
const OFFLINE_BUNDLE: Program = { name: 'offline-bundle', errorLine: (code, text) => `${PREFIX} ${code} ${text}` };

const REGISTRY_OPTION = { type: 'string', valueName: 'HOST/PATH', description: 'also push the images as HOST/PATH/<name>:<tag>' } as const;

const PREPARE: CommandSpec = {
  name: 'prepare',
  summary: 'build a bundle on the connected side',
  usage: 'prepare [--out DIR] [--images FILE] [--source-registry HOST/PATH] [--pull] [--cosign-key KEY]',
  description: 'Saves the pinned images, packs the sidecar and writes the manifest, SHA256SUMS and this tool into DIR.',
  options: {
    out: { type: 'string', valueName: 'DIR', description: 'where to write the bundle (default dist/offline/tcpao-proxy-<version>)' },
    images: { type: 'string', valueName: 'FILE', description: 'the pinned image list (default deploy/images/images.json)' },
    'source-registry': { type: 'string', valueName: 'HOST/PATH', description: 'pull the images from this registry' },
    pull: { type: 'boolean', description: 'pull images missing from the local store' },
    'cosign-key': { type: 'string', valueName: 'KEY', description: 'sign SHA256SUMS with this cosign key (password in COSIGN_PASSWORD)' },
  },
};

const LOAD: CommandSpec = {
  name: 'load',
  summary: 'verify a bundle and load its images on the disconnected side',
  usage: 'load BUNDLE_DIR [--registry HOST/PATH] [--cosign-key PUBKEY] [--require-signature]',
  description: 'Verifies every file against SHA256SUMS and manifest.json, and only then loads each image and checks its ID.',
  options: {
    registry: REGISTRY_OPTION,
    'cosign-key': { type: 'string', valueName: 'PUBKEY', description: 'verify the signature of SHA256SUMS with this public key' },
    'require-signature': { type: 'boolean', description: 'refuse a bundle whose signature is absent or unchecked' },
  },
  positionals: ['BUNDLE_DIR'],
};

const VERIFY: CommandSpec = {
  name: 'verify',
  summary: 'report whether every image of a bundle is in the local image store',
  usage: 'verify BUNDLE_DIR [--registry HOST/PATH] [--json]',
  description: "Reports whether every image the manifest names is in the local image store at the manifest's image ID.",
  options: {
    registry: { ...REGISTRY_OPTION, description: 'check the images under HOST/PATH too' },
    json: { type: 'boolean', description: 'print the report as JSON' },
  },
  positionals: ['BUNDLE_DIR'],
};

function usage(message: string): TcpAoError {
  return new TcpAoError('ERR_TCPAO_USAGE', `${message}; see scripts/offline-bundle --help`);
}

function bundleDir(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw usage(`expected exactly one BUNDLE_DIR, got ${positionals.length}`);
  const dir = resolve(positionals[0] as string);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new TcpAoError('ERR_TCPAO_BUNDLE_NOT_FOUND', `${dir} is not a directory; give the directory the bundle was copied to`);
  return dir;
}

function registryOption(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (!isRegistryPrefix(value)) throw usage(`${flag} ${JSON.stringify(value)} must look like HOST[:PORT]/PATH, with no scheme, tag or trailing slash`);
  return value;
}

async function runPrepare(values: OptionValues, deps: CliDeps): Promise<number> {
  const repoRoot = deps.repoRoot ?? DEFAULT_REPO_ROOT;
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const result = await prepareBundle({
    repoRoot,
    outDir: (values.out as string | undefined) ?? join(repoRoot, 'dist', 'offline', `${pkg.name}-${pkg.version}`),
    imageListPath: (values.images as string | undefined) ?? join(repoRoot, 'deploy', 'images', 'images.json'),
    sourceRegistry: registryOption(values['source-registry'] as string | undefined, '--source-registry'),
    pull: values.pull === true,
    cosignKey: values['cosign-key'] as string | undefined,
    runPackScripts: deps.runPackScripts ?? true,
    imageTool: deps.imageTool,
    cosign: deps.cosign,
    log: deps.stdout,
  });
  const m = result.manifest;
  deps.stdout(`bundle ready: ${result.outDir}`);
  deps.stdout(`  ${m.images.length} images, ${m.files.length} files, commit ${m.source.commit}${m.source.dirty ? ' (with uncommitted changes)' : ''}`);
  deps.stdout(`  ${m.signature.method === 'none' ? m.signature.note : `signed with cosign: ${m.signature.signatureFile}`}`);
  return EXIT_OK;
}

async function runLoad(values: OptionValues, positionals: readonly string[], deps: CliDeps): Promise<number> {
  const dir = bundleDir(positionals);
  const report = await loadBundle(dir, {
    imageTool: deps.imageTool,
    cosign: deps.cosign,
    cosignKey: values['cosign-key'] as string | undefined,
    requireSignature: values['require-signature'] === true,
    registry: registryOption(values.registry as string | undefined, '--registry'),
    log: deps.stdout,
  });
  for (const p of report.problems) deps.stderr(`${PREFIX} ${formatProblem(p)}`);
  if (!report.verified) {
    deps.stderr(`${PREFIX} bundle refused (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}); nothing was loaded`);
    return EXIT_FAILED;
  }
  for (const image of report.images) {
    if (image.loaded) deps.stdout(`loaded ${image.ref} (${image.imageId})`);
    if (image.pushedRef !== undefined) deps.stdout(`pushed ${image.pushedRef}${image.pushedDigest ? ` (${image.pushedDigest})` : ''}`);
  }
  if (report.problems.length > 0) {
    deps.stderr(`${PREFIX} load incomplete (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'})`);
    return EXIT_FAILED;
  }
  deps.stdout(`done: ${report.images.length} images loaded${values.registry === undefined ? '' : ` and pushed to ${values.registry as string}`}`);
  return EXIT_OK;
}

export function formatReadiness(r: Readiness): string[] {
  const lines: string[] = [];
  if (r.bundle !== null) lines.push(`${r.bundle.name} ${r.bundle.version} offline bundle (commit ${r.bundle.commit})`);
  const width = Math.max(0, ...r.images.map((i) => i.ref.length));
  for (const i of r.images) {
    const state =
      i.state === 'ok'
        ? `ok        ${i.localId}`
        : i.state === 'missing'
          ? 'MISSING   not in the local image store'
          : i.state === 'digest-mismatch'
            ? `WRONG ID  ${i.localId} (expected ${i.expectedId})`
            : 'ERROR     could not inspect (see below)';
    lines.push(`  ${i.ref.padEnd(width)}  ${state}`);
  }
  for (const p of r.problems) lines.push(`  ${formatProblem(p)}`);
  lines.push(r.ready ? 'READY: every image is present at the manifest image ID' : `NOT READY: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`);
  return lines;
}

async function runVerify(values: OptionValues, positionals: readonly string[], deps: CliDeps): Promise<number> {
  const dir = bundleDir(positionals);
  const readiness = await checkReadiness(dir, deps.imageTool, registryOption(values.registry as string | undefined, '--registry'));
  if (values.json === true) deps.stdout(JSON.stringify(readiness, null, 2));
  else for (const line of formatReadiness(readiness)) deps.stdout(line);
  return readiness.ready ? EXIT_OK : EXIT_FAILED;
}

const VERBS: readonly CommandSpec[] = [PREPARE, LOAD, VERIFY];

/** Run one verb; never throws. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    const command = VERBS.find((spec) => spec.name === verb);
    if (command === undefined) {
      throw usage(verb === undefined ? 'missing verb (prepare, load or verify)' : `unknown verb ${JSON.stringify(verb)} (expected prepare, load or verify)`);
    }
    const { options, positionals, help } = parseCommandArgs(OFFLINE_BUNDLE, command, rest);
    if (help) {
      for (const line of commandHelp(OFFLINE_BUNDLE, command).trimEnd().split('\n')) deps.stdout(line);
      return EXIT_OK;
    }
    if (command === PREPARE) return await runPrepare(options, deps);
    if (command === LOAD) return await runLoad(options, positionals, deps);
    return await runVerify(options, positionals, deps);
  } catch (err) {
    return reportError(OFFLINE_BUNDLE, err, deps.stderr, undefined);
  }
}

if (require.main === module) {
  void runCli(process.argv.slice(2), {
    imageTool: new DockerCli(),
    cosign: new CosignCli(),
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  }).then((code) => {
    process.exitCode = code;
  });
}
