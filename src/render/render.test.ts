import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeCycle } from '../engine/cycle';
import { parseSnapshot } from '../model/text';
import { testConfig } from '../../test/support/test-config';
import { formatStatusText } from './render';

const config = testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1', weight: 1 },
  { name: 'isp2', interface: 'if2', address: '203.0.113.2/24', gateway: '203.0.113.1', weight: 1 },
]);
const KERNEL = `
link lo up lower_up
link if1 up lower_up
link if2 up lower_up
addr if1 198.51.100.2/24
addr if2 203.0.113.2/24
route 198.51.100.0/24 dev if1 proto kernel scope link src 198.51.100.2
route 203.0.113.0/24 dev if2 proto kernel scope link src 203.0.113.2
`;

function statusText(snapshot: string): string {
  const kernel = parseSnapshot(snapshot);
  const cycle = computeCycle(config, { facts: { kernel, leases: [], health: {} }, nft: { kind: 'unavailable', reason: 'test' } });
  return formatStatusText(cycle);
}

test('status without a daemon: a foreign object in a slot of the plan is a mismatch, named with the uplink it blocks', () => {
  assert.match(statusText(KERNEL), /kernel differs from the plan by \d+ changes/);
  const blocked = statusText(`${KERNEL}nexthop id ${config.uplinks[0]!.table} via 198.51.100.50 dev if1 proto static\n`);
  assert.match(blocked, /^kernel does NOT match the plan: foreign objects hold its slots:$/m);
  assert.match(blocked, /^ {2}collision: isp1: .*198\.51\.100\.50/m);
  assert.doesNotMatch(blocked, /kernel matches the plan/);
});
