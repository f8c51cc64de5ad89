import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UplinkdError } from '../src/errors';
import { LOSS_TABLE, lossRuleset, RATE_LIMIT_TABLE, rateLimitChain } from './faults';

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

test('the iptables rate limit: hashlimit per source and destination above N/s dropped, in a chain of its own, optionally for one source net', () => {
  const c = rateLimitChain(2, '198.51.100.0/24');
  assert.deepEqual([c.table, c.hook, c.chain], ['filter', 'INPUT', RATE_LIMIT_TABLE]);
  assert.equal(c.rules.length, 1);
  assert.match(c.rules[0], /^-s 198\.51\.100\.0\/24 -p icmp --icmp-type echo-request -m hashlimit --hashlimit-above 2\/sec --hashlimit-burst 2 --hashlimit-mode srcip,dstip .* -j DROP$/);
  assert.doesNotMatch(rateLimitChain(3).rules[0], /-s /);
});
