import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LastResult } from './memo';

test('LastResult: the same key returns the stored value without computing; another key computes afresh', () => {
  const memo = new LastResult<string, { n: number }>();
  let calls = 0;
  const compute = (n: number) => () => ({ n: (calls++, n) });
  const a = memo.get('a', compute(1));
  assert.equal(memo.get('a', compute(99)), a, 'a hit returns the stored object');
  assert.equal(calls, 1);
  const b = memo.get('b', compute(2));
  assert.deepEqual(b, { n: 2 });
  assert.equal(calls, 2);
  // Only the last key is kept: going back computes again, and never hands out b for a.
  const again = memo.get('a', compute(3));
  assert.deepEqual(again, { n: 3 });
  assert.notEqual(again, a);
  assert.equal(calls, 3);
});
