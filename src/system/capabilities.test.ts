import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasNetAdmin } from './capabilities';

test('CAP_NET_ADMIN is bit 12 of CapEff', () => {
  assert.equal(hasNetAdmin('Name:\tnode\nCapEff:\t000001ffffffffff\n'), true);
  assert.equal(hasNetAdmin('CapEff:\t0000000000001000\n'), true);
  assert.equal(hasNetAdmin('CapEff:\t0000000000002000\n'), false, 'CAP_NET_RAW alone is not enough');
  assert.equal(hasNetAdmin('CapEff:\t0000000000000000\n'), false);
  assert.equal(hasNetAdmin('Name:\tnode\n'), false);
});
