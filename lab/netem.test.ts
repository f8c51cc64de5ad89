import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOSSY, netemArgs, SATELLITE } from './netem';

test('netem arguments: delay with jitter, loss, and refusal of nothing or a bad percentage', () => {
  assert.equal(netemArgs(SATELLITE), 'netem delay 150ms 10ms limit 10000');
  assert.equal(netemArgs(LOSSY), 'netem loss 20% limit 10000');
  assert.equal(netemArgs({ delayMs: 50, lossPercent: 1 }), 'netem delay 50ms loss 1% limit 10000');
  assert.throws(() => netemArgs({}), /delay or a loss/);
  assert.throws(() => netemArgs({ lossPercent: 120 }), /0\.\.100/);
});
