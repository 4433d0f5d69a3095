import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { prepareFixture, readJson, REPO_ROOT, scratch } from './fixture.js';

/*
 * The npm tarball in the bundle installs with no registry: its runtime
 * dependencies are bundled, the native addon is compiled by node-gyp against
 * the local Node headers, and the installed CLI runs.
 */

const NODE_PREFIX = dirname(dirname(process.execPath));
const UNREACHABLE_REGISTRY = 'http://127.0.0.1:9';
const fixture = prepareFixture(t);

t.test('the bundled npm tarball installs and runs with no network', async (t) => {
  if (!existsSync(join(NODE_PREFIX, 'include', 'node', 'node_api.h'))) {
    t.fail(`Node headers are missing under ${NODE_PREFIX}/include/node; the offline install needs them (see docs/air-gap.md)`);
    return;
  }
  const { dir, manifest } = await fixture;
  const prefix = scratch(t, 'tcpao-offline-prefix-');
  const home = scratch(t, 'tcpao-offline-home-');
  const emptyCache = scratch(t, 'tcpao-offline-cache-');
  const userConfig = join(home, '.npmrc');
  writeFileSync(userConfig, '');

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    npm_config_userconfig: userConfig,
  };
  const install = spawnSync(
    'npm',
    ['install', '--offline', '--no-audit', '--no-fund', '--cache', emptyCache, '--registry', UNREACHABLE_REGISTRY, '--prefix', prefix, join(dir, manifest.npmPackage.file)],
    { env, encoding: 'utf8', cwd: prefix },
  );
  t.equal(install.status, 0, `npm install --offline succeeds${install.status === 0 ? '' : `:\n${install.stderr.slice(-3_000)}`}`);

  const installed = join(prefix, 'node_modules', manifest.npmPackage.name);
  t.ok(existsSync(join(installed, 'build', 'Release', 'tcpao.node')), 'the native addon was compiled on this host at install');
  const addon = spawnSync(process.execPath, ['-e', 'process.stdout.write(typeof require(process.argv[1]).probe)', join(installed, 'build', 'Release', 'tcpao.node')], {
    env,
    encoding: 'utf8',
  });
  t.equal(addon.stdout, 'function', 'the compiled addon loads and exports its functions');
  for (const dep of manifest.npmPackage.bundledDependencies) {
    t.ok(existsSync(join(installed, 'node_modules', dep, 'package.json')), `${dep} came from the bundle`);
  }
  t.same(readdirSync(join(prefix, 'node_modules')).filter((n) => !n.startsWith('.')), [manifest.npmPackage.name], 'nothing else was installed beside the package');

  const version = spawnSync(join(prefix, 'node_modules', '.bin', 'tcpao-proxy'), ['--version'], { env, encoding: 'utf8' });
  t.equal(version.status, 0, `tcpao-proxy --version exits 0${version.status === 0 ? '' : `: ${version.stderr}`}`);
  const pkg = readJson<{ version: string }>(join(REPO_ROOT, 'package.json'));
  t.match(version.stdout, new RegExp(`^tcpao-proxy ${pkg.version.replace(/[.]/g, '\\.')} `), 'prints its own version');
});
