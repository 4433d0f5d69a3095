#!/usr/bin/env node
// Builds the addon (node-gyp rebuild) against the headers installed beside the
// node that runs this script (Debian's nodejs, official tarballs and nvm all
// ship <prefix>/include/node), so the build downloads nothing. An explicit
// npm_config_nodedir wins; without local headers node-gyp falls back to its own
// lookup. Extra arguments go to node-gyp.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const prefix = dirname(dirname(process.execPath));
const env = { ...process.env };
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node.h'))) {
  env.npm_config_nodedir = prefix;
}
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', ...process.argv.slice(2)], { stdio: 'inherit', env });
if (result.error) {
  console.error(`build-native: could not run node-gyp: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
