#!/usr/bin/env node
// Reads a TAP stream (tap --reporter=tap) on stdin, echoes it, and counts test
// cases: the innermost subtests (a subtest holding assertions but no subtests
// of its own), or the whole file when it has no subtests. A case whose
// assertions were all skipped counts as skipped; a file that fails outside its
// cases (a crash, a timeout) adds one failed case. Writes
// "<passed> <failed> <skipped>" to the file named by --counts.
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';

const countsFile = process.argv[process.argv.indexOf('--counts') + 1];
const RESULT = /^(\s*)(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/;
const counts = { passed: 0, failed: 0, skipped: 0 };
/** Per depth: what the results seen at that depth (since their parent's last result) contained. */
const frames = [];
let failedInFile = 0;

const frame = (depth) => {
  while (frames.length <= depth) frames.push({ results: 0, subtests: 0, skips: 0 });
  return frames[depth];
};

function countCase(notOk, directive, children) {
  if (notOk && directive !== 'TODO') {
    counts.failed += 1;
    failedInFile += 1;
  } else if (directive === 'SKIP' || (children.results > 0 && children.results === children.skips)) {
    counts.skipped += 1;
  } else {
    counts.passed += 1;
  }
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  process.stdout.write(`${line}\n`);
  const match = RESULT.exec(line);
  if (match === null) continue;
  const depth = match[1].length / 4;
  const notOk = match[2] !== undefined;
  const directive = match[4];
  const children = frame(depth + 1);
  const hasChildren = children.results > 0;
  if (depth === 0) {
    if (!hasChildren || children.subtests === 0) countCase(notOk, directive, children);
    else if (notOk && failedInFile === 0) countCase(true, undefined, children);
    failedInFile = 0;
  } else if (hasChildren && children.subtests === 0) {
    countCase(notOk, directive, children);
  }
  const own = frame(depth);
  own.results += 1;
  if (hasChildren) own.subtests += 1;
  if (directive === 'SKIP') own.skips += 1;
  frames.length = depth + 1;
}
if (countsFile) writeFileSync(countsFile, `${counts.passed} ${counts.failed} ${counts.skipped}\n`);
