import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { jsonText } from './output';

const OUTPUT = path.join(__dirname, 'output.js');

/** Runs `script` in a child whose stdout pipe the reader closes after the first chunk (like `| head -1`). */
function runWithReaderGone(script: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.once('data', () => child.stdout.destroy());
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

// The first line reaches the reader; the rest is written after the reader closed the pipe.
const WRITES = `
process.stdout.write('first\\n');
setTimeout(() => {
  process.stdout.write('more\\n'.repeat(100000));
  process.stdout.write('and more\\n');
  setTimeout(() => { console.error('went on'); process.exitCode = 3; }, 50);
}, 300);`;

test('writes to a closed stdout are dropped: no EPIPE crash, the command goes on to its own exit status', async () => {
  const { code, stderr } = await runWithReaderGone(`require(${JSON.stringify(OUTPUT)}).dropOutputOnClosedPipe();${WRITES}`);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
  assert.match(stderr, /went on/);
  assert.equal(code, 3);
});

test('control: without it the same writes crash with an unhandled EPIPE error', async () => {
  const { code, stderr } = await runWithReaderGone(WRITES);
  assert.match(stderr, /EPIPE/);
  assert.equal(code, 1);
});

test('writeOut: a closed stdout drops the output and the command goes on, as with the streams', async () => {
  const script = `const o = require(${JSON.stringify(OUTPUT)}); o.dropOutputOnClosedPipe(); o.writeOut('first\\n');
setTimeout(() => { o.writeOut('more\\n'.repeat(100000)); console.error('went on'); process.exitCode = 3; }, 300);`;
  const { code, stderr } = await runWithReaderGone(script);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
  assert.match(stderr, /went on/);
  assert.equal(code, 3);
});

test('dropOutputOnClosedPipe makes no stream: writeOut to a pipe loads neither the streams nor node:net', () => {
  const script = `const o = require(${JSON.stringify(OUTPUT)}); o.dropOutputOnClosedPipe(); o.writeOut('answer\\n');
require('fs').writeSync(2, JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (net|stream|internal\\/streams\\/writable)$/.test(m))));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.stdout, 'answer\n');
  assert.deepEqual(JSON.parse(r.stderr), []);
  // control: the stream that console.log makes does load them
  const c = spawnSync(process.execPath, ['-e', script.replace("o.writeOut('answer\\n')", "console.log('answer')")], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(c.stdout, 'answer\n');
  assert.ok(JSON.parse(c.stderr).includes('NativeModule net'));
});

test('jsonText: the same JSON value, with no character a terminal would act on', () => {
  const hostile = `a\x00\x1b[2J\x7f\u009b31m\u2028\u202eb\ufeff`;
  const text = jsonText({ error: hostile, list: [hostile] });
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/);
  assert.deepEqual(JSON.parse(text), { error: hostile, list: [hostile] });
  assert.match(text, /\\u009b31m/);
});
