import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeReport, parseBlocks, renderSection, table } from './report';

const HEADER = '# Benchmarks\n\nintro';

test('a run of one benchmark rewrites its block and keeps the others in registry order', () => {
  const first = mergeReport(HEADER, undefined, [
    { name: 'a', title: 'A', body: 'a1' },
    { name: 'b', title: 'B', body: 'b1' },
  ], ['a', 'b']);
  const second = mergeReport(HEADER, first, [{ name: 'b', title: 'B', body: 'b2' }], ['a', 'b']);
  assert.match(second, /a1/);
  assert.match(second, /b2/);
  assert.doesNotMatch(second, /b1/);
  assert.ok(second.indexOf('## A') < second.indexOf('## B'));
  assert.ok(second.startsWith(HEADER));
});

test('blocks of benchmarks that are no longer registered are kept after the registered ones', () => {
  const old = mergeReport(HEADER, undefined, [{ name: 'gone', title: 'Gone', body: 'old numbers' }], ['gone']);
  const next = mergeReport(HEADER, old, [{ name: 'a', title: 'A', body: 'a1' }], ['a']);
  assert.ok(next.indexOf('## A') < next.indexOf('## Gone'));
  assert.match(next, /old numbers/);
});

test('text outside the blocks is replaced by the header; a second merge changes nothing', () => {
  const withJunk = `stale header\n\n${renderSection({ name: 'a', title: 'A', body: 'a1' })}\n\ntrailing junk\n`;
  const merged = mergeReport(HEADER, withJunk, [], ['a']);
  assert.doesNotMatch(merged, /stale header|trailing junk/);
  assert.equal(mergeReport(HEADER, merged, [], ['a']), merged);
});

test('parseBlocks finds each block by name and ignores an unterminated one', () => {
  const text = `${renderSection({ name: 'x-1', title: 'X', body: 'x' })}\n<!-- bench:y start -->\n## Y\n`;
  assert.deepEqual([...parseBlocks(text).keys()], ['x-1']);
});

test('table renders a header, a separator and rows', () => {
  assert.equal(table(['a', 'b'], [['1', '2']]), '| a | b |\n| --- | --- |\n| 1 | 2 |');
});
