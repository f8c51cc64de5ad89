import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monotonicNow, wallTime } from './clock';

test('the monotonic clock starts at the wall clock and never goes back', () => {
  assert.ok(Math.abs(monotonicNow() - Date.now()) < 60_000, 'anchored at the process start on the wall clock');
  let last = monotonicNow();
  for (let i = 0; i < 10_000; i++) {
    const t = monotonicNow();
    assert.ok(t >= last);
    last = t;
  }
});

test('a time of one clock on the other keeps its distance from now: the wall clock stepped back an hour', () => {
  const now = () => 1_000_000;
  const wall = () => 1_000_000 - 3_600_000;
  assert.equal(wallTime(995_000, now, wall), 1_000_000 - 3_600_000 - 5_000);
  assert.equal(wallTime(995_000, now, now), 995_000);
});
