#!/usr/bin/env node
// Reads a TAP stream (tap --reporter=tap) on stdin, echoes it, and counts test
// cases: the subtests one level below each test file. A case whose asserts were
// all skipped counts as skipped. Writes "<passed> <failed> <skipped>" to the
// file named by --counts, so the caller can add up several runs.
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';

const countsFile = process.argv[process.argv.indexOf('--counts') + 1];
const RESULT = /^(\s*)(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/;
let passed = 0;
let failed = 0;
let skipped = 0;
let childAsserts = 0;
let childSkips = 0;
let fileHadCases = false;

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  process.stdout.write(`${line}\n`);
  const match = RESULT.exec(line);
  if (match === null) continue;
  const depth = match[1].length / 4;
  const notOk = match[2] !== undefined;
  const directive = match[4];
  if (depth >= 2) {
    childAsserts += 1;
    if (directive === 'SKIP') childSkips += 1;
  } else if (depth === 1) {
    fileHadCases = true;
    if (notOk && directive !== 'TODO') failed += 1;
    else if (directive === 'SKIP' || (childAsserts > 0 && childAsserts === childSkips)) skipped += 1;
    else passed += 1;
    childAsserts = 0;
    childSkips = 0;
  } else {
    // A test file that failed without reporting any case (it crashed or timed out) still counts.
    if (notOk && !fileHadCases) failed += 1;
    else if (!fileHadCases && directive === 'SKIP') skipped += 1;
    fileHadCases = false;
    childAsserts = 0;
    childSkips = 0;
  }
}
if (countsFile) writeFileSync(countsFile, `${passed} ${failed} ${skipped}\n`);
