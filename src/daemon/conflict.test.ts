import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictLimiter } from './conflict';

const policy = { limit: 3, windowMs: 10_000, baseBackoffMs: 1_000, maxBackoffMs: 4_000 };

test('restorations up to the limit pass; the next one backs off and escalates once', () => {
  const l = new ConflictLimiter(policy);
  assert.deepEqual([0, 10, 20].map((t) => l.restore('k', t).allow), [true, true, true]);
  const d = l.restore('k', 30);
  assert.deepEqual(d, { allow: false, retryAt: 1030, escalated: true, restorations: 3, backoffMs: 1000 });
  const again = l.restore('k', 500);
  assert.equal(again.allow, false);
  assert.equal(!again.allow && again.escalated, false, 'no second warning during the same backoff');
  assert.equal(l.restore('other', 500).allow, true, 'per object');
});

test('after a backoff one probe passes; continued fighting doubles the backoff up to the maximum', () => {
  const l = new ConflictLimiter(policy);
  for (const t of [0, 1, 2]) l.restore('k', t);
  l.restore('k', 3); // backoff 1000 until 1003
  assert.equal(l.restore('k', 1003).allow, true, 'probe');
  const d1 = l.restore('k', 1004);
  assert.ok(!d1.allow && d1.escalated && d1.backoffMs === 2000);
  assert.equal(l.restore('k', 3004).allow, true);
  const d2 = l.restore('k', 3005);
  assert.ok(!d2.allow && d2.backoffMs === 4000);
  assert.equal(l.restore('k', 7005).allow, true);
  const d3 = l.restore('k', 7006);
  assert.ok(!d3.allow && d3.backoffMs === 4000, 'capped');
});

test('a window without restorations forgives the object', () => {
  const l = new ConflictLimiter(policy);
  for (const t of [0, 1, 2]) l.restore('k', t);
  l.restore('k', 3);
  assert.equal(l.restore('k', 1003).allow, true);
  assert.deepEqual(l.active(1004).map((c) => c.key), ['k']);
  assert.equal(l.restore('k', 20_000).allow, true, 'quiet for a window');
  assert.equal(l.restore('k', 20_001).allow, true);
  assert.deepEqual(l.active(40_000), []);
});

test('active objects carry the description given with the restoration', () => {
  const l = new ConflictLimiter(policy);
  l.restore('k', 0, 'ip rule add from 198.51.100.2/32 lookup 1001');
  assert.deepEqual(l.active(1).map((c) => [c.key, c.object]), [['k', 'ip rule add from 198.51.100.2/32 lookup 1001']]);
});
