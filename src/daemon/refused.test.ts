import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UplinkdError } from '../errors';
import type { UplinkStatus } from '../plan/planner';
import { refusalText, withRefusals } from './refused';

const uplink = (name: string, iface: string, table: number): UplinkStatus => ({
  name, interface: iface, table, dhcp: false, state: 'ready', reason: 'ok', health: 'up', weight: 1, tier: 1, inDefault: true,
} as UplinkStatus);

const einval = new UplinkdError('netlink', 'netlink request (type 104) failed: EINVAL (Nexthop has invalid gateway)', { errno: 'EINVAL', kernelMessage: 'Nexthop has invalid gateway' });

test('the kernel\'s refusal is errno and its extended ACK text, else the message', () => {
  assert.equal(refusalText(einval), 'EINVAL Nexthop has invalid gateway');
  assert.equal(refusalText(new UplinkdError('netlink', 'x', { errno: 'EEXIST' })), 'EEXIST');
  assert.equal(refusalText(new Error('timed out')), 'timed out');
});

test('refusals go on the uplink they belong to (nexthop by device, route and rule by table), in its reason too', () => {
  const uplinks = [uplink('isp1', 'up1', 101), uplink('isp2', 'up2', 102)];
  const served = withRefusals(uplinks, [
    { change: { op: 'add', kind: 'nexthop', nexthop: { id: 11, protocol: 117, gateway: '10.9.9.1', dev: 'up1' } }, error: einval },
    { change: { op: 'add', kind: 'route', route: { table: 101, dst: '0.0.0.0/0', protocol: 117 } as never }, error: new UplinkdError('netlink', 'x', { errno: 'ENETUNREACH' }) },
    { change: { op: 'add', kind: 'rule', rule: { table: 101, priority: 1000 } as never }, error: einval },
  ]);
  assert.deepEqual(served[0]!.refused, ['EINVAL Nexthop has invalid gateway', 'ENETUNREACH']);
  assert.equal(served[0]!.reason, 'ok; refused: EINVAL Nexthop has invalid gateway, ENETUNREACH');
  assert.equal(served[1], uplinks[1], 'isp2 had no refusal: unchanged');
});

test('the balancing group and main-table routes belong to no uplink; no refusals leave every uplink as it is', () => {
  const uplinks = [uplink('isp1', 'up1', 101)];
  const served = withRefusals(uplinks, [
    { change: { op: 'add', kind: 'nexthop', nexthop: { id: 100, protocol: 117, group: [{ id: 11, weight: 1 }] } as never }, error: einval },
    { change: { op: 'add', kind: 'route', route: { table: 254, dst: '0.0.0.0/0', protocol: 117 } as never }, error: einval },
  ]);
  assert.equal(served[0], uplinks[0]);
  assert.deepEqual(withRefusals(uplinks, []), uplinks);
});
