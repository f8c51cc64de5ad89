import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UplinkdError } from '../src/errors';
import { LOSS_TABLE, lossRuleset } from './faults';

test('the loss ruleset drops N % of forwarded packets in a table of its own', () => {
  const text = lossRuleset(10);
  assert.match(text, new RegExp(`^table ip ${LOSS_TABLE} \\{`));
  assert.match(text, /type filter hook forward priority -10; policy accept;/);
  assert.match(text, /numgen random mod 100 < 10 counter drop/);
  assert.match(lossRuleset(0), /< 0 counter drop/);
});

test('loss outside 0..100 or not whole is refused', () => {
  for (const bad of [-1, 101, 2.5, Number.NaN]) assert.throws(() => lossRuleset(bad), UplinkdError, String(bad));
});
