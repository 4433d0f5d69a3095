#!/usr/bin/env node
// Fails when a src/ file is longer than the limit and none of its first lines
// says why with a "// size: <reason>" comment. Prints each offender with its
// line count, so the report names what to split.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const LIMIT = 300;
const MARKER_LINES = 3;
const MARKER = /^\/\/ size: \S/;
const root = join(import.meta.dirname, '..');

function sourcesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesUnder(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const offenders = [];
for (const file of sourcesUnder(join(root, 'src'))) {
  const lines = readFileSync(file, 'utf8').replace(/\n$/, '').split('\n');
  if (lines.length <= LIMIT) continue;
  if (lines.slice(0, MARKER_LINES).some((line) => MARKER.test(line))) continue;
  offenders.push({ file: relative(root, file), lines: lines.length });
}
offenders.sort((a, b) => b.lines - a.lines);
for (const { file, lines } of offenders) {
  console.log(`${file}: ${lines} lines, over ${LIMIT} without a "// size: <reason>" comment in its first ${MARKER_LINES} lines`);
}
if (offenders.length > 0) {
  console.log(`${offenders.length} src/ file(s) over ${LIMIT} lines: split them, or state why one must be longer`);
  process.exit(1);
}
