import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UplinkdError } from '../src/errors';
import { fmt, median, percentile, summarize } from './stats';

test('percentile uses the nearest rank and does not depend on input order', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile(hundred, 100), 100);
  assert.equal(percentile(hundred, 0), 1);
  assert.equal(percentile([5, 1, 3], 50), 3);
  assert.equal(percentile([5, 1, 3], 99), 5);
  assert.equal(percentile([7], 99), 7);
});

test('p99 of 1000 samples with ten slow ones is a fast one; with eleven it is slow', () => {
  const ten = [...Array(990).fill(1), ...Array(10).fill(50)];
  assert.equal(percentile(ten, 99), 1);
  const eleven = [...Array(989).fill(1), ...Array(11).fill(50)];
  assert.equal(percentile(eleven, 99), 50);
});

test('median averages the middle pair of an even count', () => {
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([9, 1, 5]), 5);
});

test('the input is not reordered', () => {
  const xs = [3, 1, 2];
  percentile(xs, 50);
  median(xs);
  assert.deepEqual(xs, [3, 1, 2]);
});

test('no samples or a percentile outside 0..100 is an UplinkdError', () => {
  assert.throws(() => percentile([], 50), UplinkdError);
  assert.throws(() => median([]), UplinkdError);
  assert.throws(() => summarize([]), UplinkdError);
  assert.throws(() => percentile([1], 101), UplinkdError);
  assert.throws(() => percentile([1], Number.NaN), UplinkdError);
});

test('summarize reports min, max, mean and the percentiles', () => {
  const s = summarize([10, 2, 4, 8, 6]);
  assert.deepEqual(s, { n: 5, min: 2, p50: 6, p90: 10, p99: 10, max: 10, mean: 6 });
});

test('fmt keeps about three significant digits', () => {
  assert.equal(fmt(1234.56), '1235');
  assert.equal(fmt(12.345, ' ms'), '12.3 ms');
  assert.equal(fmt(1.2345), '1.23');
  assert.equal(fmt(0.012345), '0.012');
});
