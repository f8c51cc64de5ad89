#!/usr/bin/env node
// Runs every compiled test file with node's test runner, one file at a time
// (lab tests build network namespaces and must not overlap in time).
// --unit: only tests that need no root (everything outside dist/test/lab).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'dist');
const unitOnly = process.argv.includes('--unit');

function walk(dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else if (entry.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = walk(root, [])
  .filter((f) => !unitOnly || !f.includes(`${path.sep}test${path.sep}lab${path.sep}`))
  .sort((a, b) => {
    // unit tests first, lab tests last
    const la = a.includes(`${path.sep}test${path.sep}lab${path.sep}`) ? 1 : 0;
    const lb = b.includes(`${path.sep}test${path.sep}lab${path.sep}`) ? 1 : 0;
    return la - lb || a.localeCompare(b);
  });
if (files.length === 0) {
  console.error('no test files found under dist/');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
