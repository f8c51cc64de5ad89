import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objectKey } from './identity';
import type { Change } from './types';

test('object keys ignore the op, field order and absent fields, and differ between objects', () => {
  const a: Change = { op: 'add', kind: 'rule', rule: { priority: 10100, action: 'lookup', table: 1001, protocol: 117, src: '198.51.100.2/32' } };
  const b: Change = { op: 'del', kind: 'rule', rule: { src: '198.51.100.2/32', protocol: 117, table: 1001, action: 'lookup', priority: 10100, oif: undefined } };
  const c: Change = { op: 'add', kind: 'rule', rule: { priority: 10100, action: 'lookup', table: 1002, protocol: 117, src: '198.51.100.2/32' } };
  assert.equal(objectKey(a), objectKey(b));
  assert.notEqual(objectKey(a), objectKey(c));
});

test('object keys ignore what the kernel echoes: linkdown, an nhid route\'s resolved path, a full fwmask, "from all"', () => {
  const route = { table: 1001, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', nhid: 1001 } as const;
  assert.equal(
    objectKey({ op: 'add', kind: 'route', route }),
    objectKey({ op: 'replace', kind: 'route', route: { ...route, gateway: '198.51.100.1', dev: 'if1', linkdown: true } }),
  );
  const rule = { priority: 10050, action: 'lookup', table: 1001, protocol: 117, fwmark: 0x1000000, fwmask: 0x7f000000 } as const;
  assert.equal(objectKey({ op: 'add', kind: 'rule', rule }), objectKey({ op: 'add', kind: 'rule', rule: { ...rule, src: '0.0.0.0/0' } }));
  assert.notEqual(objectKey({ op: 'add', kind: 'rule', rule }), objectKey({ op: 'add', kind: 'rule', rule: { ...rule, dport: { start: 53, end: 53 } } }));
  const group = { id: 1000, protocol: 117, group: [{ id: 1002, weight: 1 }, { id: 1001, weight: 3 }] };
  assert.equal(
    objectKey({ op: 'add', kind: 'nexthop', nexthop: group }),
    objectKey({ op: 'add', kind: 'nexthop', nexthop: { ...group, group: [...group.group].reverse() } }),
  );
  assert.notEqual(objectKey({ op: 'add', kind: 'nexthop', nexthop: group }), objectKey({ op: 'add', kind: 'route', route }));
});
