import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TcpAoError } from '../errors.js';

export interface PackedSidecar {
  /** Absolute path of the tarball. */
  readonly path: string;
  readonly fileName: string;
  readonly name: string;
  readonly version: string;
  readonly bundled: readonly string[];
}

interface PackJson {
  readonly filename?: unknown;
  readonly name?: unknown;
  readonly version?: unknown;
  readonly bundled?: unknown;
}

function run(command: string, args: readonly string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) {
        resolve(stdout);
        return;
      }
      const lines = `${stderr}`.split('\n').filter((l) => /error/i.test(l));
      const reason = lines.slice(0, 3).join(' | ') || err.message.split('\n')[0];
      reject(new TcpAoError('ERR_TCPAO_BUNDLE_NPM', `${command} ${args.slice(0, 2).join(' ')} failed: ${reason}`, { cause: err }));
    });
  });
}

/**
 * `npm pack` the sidecar. Lifecycle scripts (prepare = tsc) print to the same
 * stdout as --json, so the JSON is taken from its opening '[' line on.
 * The tarball must carry every runtime dependency (bundleDependencies), or it
 * cannot be installed without a registry.
 */
export async function packSidecar(repoRoot: string, destDir: string, runScripts: boolean): Promise<PackedSidecar> {
  const args = ['pack', '--json', '--pack-destination', destDir, ...(runScripts ? [] : ['--ignore-scripts'])];
  const stdout = await run('npm', args, repoRoot);
  const start = stdout.search(/^\[\s*$/m);
  let packed: PackJson;
  try {
    packed = (JSON.parse(start < 0 ? stdout : stdout.slice(start)) as PackJson[])[0] ?? {};
  } catch (err) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_NPM', 'npm pack --json printed no JSON summary', { cause: err });
  }
  if (typeof packed.filename !== 'string' || typeof packed.name !== 'string' || typeof packed.version !== 'string') {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_NPM', 'npm pack --json did not report a file name, name and version');
  }
  const bundled = Array.isArray(packed.bundled) ? packed.bundled.filter((b): b is string => typeof b === 'string') : [];
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const missing = Object.keys(pkg.dependencies ?? {}).filter((dep) => !bundled.includes(dep));
  if (missing.length > 0) {
    throw new TcpAoError(
      'ERR_TCPAO_BUNDLE_NPM',
      `the npm tarball does not bundle ${missing.join(', ')}; list every runtime dependency in package.json bundleDependencies and run npm ci`,
    );
  }
  return { path: join(destDir, packed.filename), fileName: packed.filename, name: packed.name, version: packed.version, bundled: [...bundled].sort() };
}

interface CycloneDxComponent {
  readonly name?: unknown;
  readonly version?: unknown;
}

/**
 * A CycloneDX SBOM of exactly what the tarball ships. `npm sbom --omit dev` on
 * the source tree drops production packages that a dev tool also uses
 * (npm/cli#7909), so the SBOM is made from the unpacked tarball instead: its
 * node_modules holds the bundled runtime tree and nothing else. The staging
 * copy drops devDependencies from package.json so npm does not report them
 * missing. Runs with --offline: no registry is contacted.
 */
export async function sidecarSbom(tarballPath: string, name: string, runtimeDependencies: readonly string[]): Promise<string> {
  const stage = await mkdtemp(join(tmpdir(), 'tcpao-sbom-'));
  try {
    await run('tar', ['-xzf', tarballPath, '-C', stage], stage);
    const root = join(stage, name.replace(/^@[^/]+\//, ''));
    await rename(join(stage, 'package'), root);
    const pkgPath = join(root, 'package.json');
    const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as Record<string, unknown>;
    delete pkg.devDependencies;
    await writeFile(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);
    const sbomText = await run('npm', ['sbom', '--sbom-format', 'cyclonedx', '--sbom-type', 'application', '--offline'], root);
    checkSbom(sbomText, runtimeDependencies);
    return sbomText;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** The SBOM must be CycloneDX JSON and list every runtime dependency. */
export function checkSbom(text: string, runtimeDependencies: readonly string[]): void {
  let sbom: { bomFormat?: unknown; specVersion?: unknown; components?: unknown };
  try {
    sbom = JSON.parse(text) as typeof sbom;
  } catch (err) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_NPM', 'npm sbom printed something other than JSON', { cause: err });
  }
  if (sbom.bomFormat !== 'CycloneDX' || typeof sbom.specVersion !== 'string' || !Array.isArray(sbom.components)) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_NPM', 'npm sbom output is not a CycloneDX document with components');
  }
  const names = new Set((sbom.components as CycloneDxComponent[]).map((c) => c.name));
  const missing = runtimeDependencies.filter((dep) => !names.has(dep));
  if (missing.length > 0) {
    throw new TcpAoError('ERR_TCPAO_BUNDLE_NPM', `the SBOM does not list ${missing.join(', ')}`);
  }
}
