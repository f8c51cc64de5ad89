import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExpectedEchoes } from './echoes';
import type { KernelEvent } from '../kernel/port';
import type { Change, Nexthop, Route, Rule } from '../model/types';

const route: Route = { table: 1002, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', gateway: '203.0.113.1', dev: 'if2' };
const rule: Rule = { priority: 10100, action: 'lookup', table: 1002, protocol: 117, src: '203.0.113.7/32' };
const nexthop: Nexthop = { id: 1002, protocol: 117, gateway: '203.0.113.1', dev: 'if2' };
const event = (e: Partial<KernelEvent> & Pick<KernelEvent, 'kind' | 'action'>): KernelEvent => ({ summary: '', at: 0, ...e });

test('each change is expected once as the notification the kernel sends for it; other notifications are not echoes', () => {
  const echoes = new ExpectedEchoes();
  const changes: Change[] = [
    { op: 'add', kind: 'route', route },
    { op: 'add', kind: 'rule', rule },
    { op: 'replace', kind: 'nexthop', nexthop },
    { op: 'del', kind: 'rule', rule: { ...rule, src: '203.0.113.6/32' } },
  ];
  echoes.expect(changes);
  assert.equal(echoes.size, 4);
  // As the kernel reports them back: fields uplinkd never sets (the rule's "from all" mask, linkdown) do not count.
  assert.equal(echoes.consume(event({ kind: 'route', action: 'new', route: { ...route, linkdown: true } as Route })), true);
  assert.equal(echoes.consume(event({ kind: 'route', action: 'new', route })), false, 'expected once only');
  assert.equal(echoes.consume(event({ kind: 'rule', action: 'del', rule })), false, 'a delete of an added rule is not its echo');
  assert.equal(echoes.consume(event({ kind: 'rule', action: 'new', rule: { ...rule, priority: 10101 } })), false, 'another rule');
  assert.equal(echoes.consume(event({ kind: 'rule', action: 'new', rule: { ...rule, protocol: 4 } })), false, 'another program\'s rule');
  assert.equal(echoes.consume(event({ kind: 'rule', action: 'new', rule })), true);
  assert.equal(echoes.consume(event({ kind: 'nexthop', action: 'new', nexthop: { ...nexthop, gateway: '203.0.113.9' } })), false, 'another gateway');
  assert.equal(echoes.consume(event({ kind: 'nexthop', action: 'new', nexthop })), true);
  assert.equal(echoes.consume(event({ kind: 'address', action: 'del', dev: 'if2' })), false, 'addresses and links are never echoes');
  echoes.expect([{ op: 'del', kind: 'nexthop', nexthop }]);
  assert.equal(echoes.consume(event({ kind: 'nexthop', action: 'del', nexthop, silentEffects: true })), false,
    'a delete that took routes along silently needs a look');
  assert.equal(echoes.size, 2);
});

test('a refused change is no longer expected, and clear() forgets the rest', () => {
  const echoes = new ExpectedEchoes();
  const add: Change = { op: 'add', kind: 'rule', rule };
  echoes.expect([add, add]);
  echoes.forget(add);
  assert.equal(echoes.size, 1);
  echoes.clear();
  assert.equal(echoes.consume(event({ kind: 'rule', action: 'new', rule })), false);
});
