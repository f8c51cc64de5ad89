import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import type { Change } from './types';
import {
  formatChange, formatRule, formatSnapshot, parseNexthop, parseRoute, parseRule, parseSnapshot,
} from './text';

test('parseSnapshot reads links, addresses, routes, rules and nexthops', () => {
  const s = parseSnapshot(`
# a comment
link if1 up lower_up
link vlan102 up kind vlan   # no carrier
addr vlan102 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev vlan102 proto dhcp metric 20
route 192.0.2.0/24 dev vlan102 proto kernel scope link src 192.0.2.7
rule 10100 from 198.51.100.2/32 lookup 1001 protocol 117
nexthop id 1001 via 198.51.100.1 dev if1 proto 117
`);
  assert.deepEqual(s.links, [
    { index: 1, name: 'if1', up: true, lowerUp: true },
    { index: 2, name: 'vlan102', up: true, lowerUp: false, kind: 'vlan' },
  ]);
  assert.deepEqual(s.addresses, [{ dev: 'vlan102', address: '192.0.2.7', prefixlen: 24, dynamic: true, secondary: false, scope: 'universe' }]);
  assert.deepEqual(s.routes, [
    { table: 254, dst: '0.0.0.0/0', type: 'unicast', protocol: 16, scope: 'universe', gateway: '192.0.2.1', dev: 'vlan102', metric: 20 },
    { table: 254, dst: '192.0.2.0/24', type: 'unicast', protocol: 2, scope: 'link', dev: 'vlan102', src: '192.0.2.7' },
  ]);
  assert.deepEqual(s.rules, [{ priority: 10100, action: 'lookup', table: 1001, protocol: 117, src: '198.51.100.2/32' }]);
  assert.deepEqual(s.nexthops, [{ id: 1001, protocol: 117, gateway: '198.51.100.1', dev: 'if1' }]);
});

test('iproute2 show output parses: tables by name, multipath hops, bare addresses, prio with a colon', () => {
  assert.deepEqual(parseRoute('default proto static metric 10 nexthop via 192.0.2.1 dev a weight 2 nexthop via 198.51.100.1 dev b weight 1 table default'), {
    table: 253, dst: '0.0.0.0/0', type: 'unicast', protocol: 4, scope: 'universe', metric: 10,
    multipath: [{ dev: 'a', gateway: '192.0.2.1', weight: 2 }, { dev: 'b', gateway: '198.51.100.1', weight: 1 }],
  });
  assert.deepEqual(parseRoute('local 192.0.2.7 dev v table local proto kernel src 192.0.2.7'), {
    table: 255, dst: '192.0.2.7/32', type: 'local', protocol: 2, scope: 'host', dev: 'v', src: '192.0.2.7',
  });
  assert.deepEqual(parseRule('10110:\tnot from 192.0.2.7 fwmark 0x10/0xff iif lan0 lookup main proto 117'), {
    priority: 10110, action: 'lookup', table: 254, protocol: 117, invert: true, src: '192.0.2.7/32', fwmark: 16, fwmask: 255, iif: 'lan0',
  });
  assert.deepEqual(parseRule('32000: from all to 203.0.113.0/24 unreachable'), {
    priority: 32000, action: 'unreachable', table: 0, protocol: 0, dst: '203.0.113.0/24',
  });
  assert.deepEqual(parseNexthop('id 1000 group 1001/1002,3 type resilient buckets 64 idle_timer 30 unbalanced_timer 0 unbalanced_time 0 proto 117'), {
    id: 1000, protocol: 117, group: [{ id: 1001, weight: 1 }, { id: 1002, weight: 3 }],
    resilient: { buckets: 64, idleTimer: 30, unbalancedTimer: 0 },
  });
});

test('format and parse are inverse on a whole snapshot', () => {
  const text = [
    'link lo up lower_up index 1',
    'link vlan101 up lower_up kind vlan index 5',
    'addr vlan101 203.0.113.7/24 dynamic secondary',
    'addr lo 127.0.0.1/8 scope host',
    'route default nhid 1000 table 1000 proto 117',
    'route 198.51.100.0/24 dev if1 src 198.51.100.2 scope link table 1001 proto 117',
    'route blackhole 10.9.0.0/16 table main proto static metric 7',
    'route default table 77 proto boot nexthop via 192.0.2.1 dev a weight 2 nexthop dev b weight 1',
    'rule from all lookup main suppress_prefixlength 0 priority 10200 protocol 117',
    'rule not from 10.0.0.0/8 to 192.0.2.0/24 iif lan0 oif if1 fwmark 0x1/0xff prohibit priority 5 protocol static',
    'nexthop id 1000 group 1001,1/1002,3 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117',
    'nexthop id 5 blackhole proto 117',
    'nexthop id 6 group 5,1 proto boot',
  ].join('\n');
  const parsed = parseSnapshot(text);
  assert.equal(formatSnapshot(parsed), text);
  assert.deepEqual(parseSnapshot(formatSnapshot(parsed)), parsed);
});

test('formatChange gives the ip command', () => {
  const changes: [Change, string][] = [
    [{ op: 'add', kind: 'route', route: { table: 1001, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', gateway: '198.51.100.1', dev: 'if1' } },
      'ip route add default via 198.51.100.1 dev if1 table 1001 proto 117'],
    [{ op: 'replace', kind: 'route', route: { table: 1000, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', nhid: 1000, metric: 0 } },
      'ip route replace default nhid 1000 table 1000 proto 117'],
    [{ op: 'add', kind: 'rule', rule: { priority: 10100, action: 'lookup', table: 1001, protocol: 117, src: '198.51.100.2/32' } },
      'ip rule add from 198.51.100.2/32 lookup 1001 priority 10100 protocol 117'],
    [{ op: 'del', kind: 'rule', rule: { priority: 10110, action: 'lookup', table: 1002, protocol: 117, oif: 'vlan102' } },
      'ip rule del from all oif vlan102 lookup 1002 priority 10110 protocol 117'],
    [{ op: 'add', kind: 'nexthop', nexthop: { id: 1000, protocol: 117, group: [{ id: 1001, weight: 1 }, { id: 1002, weight: 3 }], resilient: { buckets: 128, idleTimer: 30, unbalancedTimer: 0 } } },
      'ip nexthop add id 1000 group 1001,1/1002,3 type resilient buckets 128 idle_timer 30 unbalanced_timer 0 proto 117'],
    [{ op: 'del', kind: 'nexthop', nexthop: { id: 1002, protocol: 117, gateway: '192.0.2.1', dev: 'vlan102' } }, 'ip nexthop del id 1002'],
  ];
  for (const [change, text] of changes) assert.equal(formatChange(change), text);
});

test('malformed snapshot lines fail with the line number', () => {
  const bad = ['route table 1001 via 1.2.3.4', 'addr if1 198.51.100.2', 'rule 10 from all', 'nexthop via 1.2.3.4 dev x', 'frob x', 'route 300.1.1.1/8 dev x', 'link'];
  for (const line of bad) {
    assert.throws(() => parseSnapshot(`link lo up\n${line}`), (e: unknown) => e instanceof UplinkdError && /^snapshot line 2: /.test(e.message), line);
  }
});

test('rules with ipproto, port ranges, tos and l3mdev format as iproute2 reads them, and parse back', () => {
  const lines = [
    'from 192.168.10.20/32 ipproto udp dport 5060-5080 lookup 1001 priority 10210 protocol 117',
    'from all tos 0x10 dscp 46 ipproto tcp sport 1024-65534 dport 443 unreachable priority 10211 protocol 117',
    'from all l3mdev priority 1000 protocol unspec',
  ];
  for (const line of lines) assert.equal(formatRule(parseRule(line)), line);
  assert.deepEqual(parseRule('10210:\tfrom 192.168.10.20 ipproto udp dport 5060-5080 lookup 1001 proto 117').dport,
    { start: 5060, end: 5080 });
});
