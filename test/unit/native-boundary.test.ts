// The native boundary has one face: code outside src/native/ imports only
// src/native/index, and src/native/load.ts is the only module that calls
// require() (the one that loads tcpao.node). Reads the TypeScript sources.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

import t from 'tap';

const ROOT = resolve(__dirname, '..', '..', '..');
const NATIVE_DIR = join(ROOT, 'src', 'native');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Relative module specifiers in import/export-from statements and require() calls. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:from\s+|require\()\s*'(\.[^']*)'/g)) {
    if (match[1] !== undefined) found.push(match[1]);
  }
  return found;
}

const sources = ['src', 'test', 'bench'].flatMap((dir) => tsFiles(join(ROOT, dir)));

t.test('outside src/native/ only src/native/index is imported', async (t) => {
  const reachesIn: string[] = [];
  for (const file of sources) {
    if (dirname(file) === NATIVE_DIR) continue;
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '');
      if (dirname(target) === NATIVE_DIR && target !== join(NATIVE_DIR, 'index')) {
        reachesIn.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
  }
  t.ok(sources.length > 50, 'the walk found the sources');
  t.same(reachesIn, [], 'no module reaches past src/native/index');
});

t.test('src/native/load.ts is the only module of src/ that calls require()', async (t) => {
  const requiring = tsFiles(join(ROOT, 'src'))
    .filter((file) => /\brequire\(/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(ROOT, file));
  t.same(requiring, ['src/native/load.ts']);
});
