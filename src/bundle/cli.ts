import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CosignCli, type Cosign } from './cosign.js';
import { DockerCli, type ImageTool } from './image-tool.js';
import { isRegistryPrefix } from './image-list.js';
import { loadBundle } from './load.js';
import { prepareBundle } from './prepare.js';
import { checkReadiness, type Readiness } from './readiness.js';
import { formatProblem } from './verify-bundle.js';
import { isUserError, TcpAoError } from '../errors.js';

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

interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (err) {
    throw usage((err as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
}

async function runPrepare(args: readonly string[], deps: CliDeps): Promise<number> {
  const { values, positionals } = parse(args, {
    out: { type: 'string' },
    images: { type: 'string' },
    'source-registry': { type: 'string' },
    pull: { type: 'boolean' },
    'cosign-key': { type: 'string' },
  });
  if (positionals.length > 0) throw usage(`prepare takes no positional arguments (got ${positionals.join(' ')})`);
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

async function runLoad(args: readonly string[], deps: CliDeps): Promise<number> {
  const { values, positionals } = parse(args, {
    registry: { type: 'string' },
    'cosign-key': { type: 'string' },
    'require-signature': { type: 'boolean' },
  });
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

async function runVerify(args: readonly string[], deps: CliDeps): Promise<number> {
  const { values, positionals } = parse(args, { registry: { type: 'string' }, json: { type: 'boolean' } });
  const dir = bundleDir(positionals);
  const readiness = await checkReadiness(dir, deps.imageTool, registryOption(values.registry as string | undefined, '--registry'));
  if (values.json === true) deps.stdout(JSON.stringify(readiness, null, 2));
  else for (const line of formatReadiness(readiness)) deps.stdout(line);
  return readiness.ready ? EXIT_OK : EXIT_FAILED;
}

/** Run one verb; never throws. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'prepare':
        return await runPrepare(rest, deps);
      case 'load':
        return await runLoad(rest, deps);
      case 'verify':
        return await runVerify(rest, deps);
      default:
        throw usage(verb === undefined ? 'missing verb (prepare, load or verify)' : `unknown verb ${JSON.stringify(verb)} (expected prepare, load or verify)`);
    }
  } catch (err) {
    if (err instanceof TcpAoError) {
      deps.stderr(`${PREFIX} ${err.code} ${err.message}`);
      return isUserError(err) ? EXIT_USAGE : EXIT_FAILED;
    }
    deps.stderr(`${PREFIX} ERR_TCPAO_INTERNAL ${err instanceof Error ? err.message : String(err)}`);
    return EXIT_FAILED;
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
