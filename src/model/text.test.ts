import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { UplinkdError } from '../errors';
import type { Change, KernelState, Route } from './types';
import { canonicalRoute } from './identity';
import { diff } from '../reconcile/diff';
import { FakePort } from '../../test/support/fake-port';
import { plan } from '../plan/planner';
import {
  formatChange, formatNexthop, formatRoute, formatRule, formatSnapshot, parseNexthop, parseRoute, parseRule, parseSnapshot,
} from './text';
import { testConfig } from '../../test/support/test-config';

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

// The commands `plan --format ip` prints must really work: run them in a throwaway namespace
// (root only), read the kernel back with `ip`, and check it holds exactly the plan.
test('the ip commands work when pasted, and the kernel then matches the plan', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root for a network namespace');
  const ns = `uplinkd-text-${process.pid}`;
  const ip = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', ns, 'ip', ...args], { encoding: 'utf8' });
  const run = (command: string): void => void ip(...command.split(' ').slice(1));
  const config = testConfig([
    { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
    { name: 'isp2', interface: 'vlan102', weight: 3 },
  ], { lan: ['lan0'] });
  const kernelViaIp = (): KernelState => {
    const own = (lines: string) => lines.split('\n').map((l) => l.replace(/\\/g, ' ').trim()).filter((l) => / proto(col)? 117\b/.test(l));
    return {
      ...parseSnapshot(''),
      routes: own(ip('-4', '-o', 'route', 'show', 'table', 'all')).map(parseRoute),
      rules: own(ip('-4', 'rule', 'show')).map(parseRule),
      nexthops: own(ip('nexthop', 'show')).map(parseNexthop),
    };
  };
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    ip('link', 'set', 'lo', 'up');
    for (const dev of ['lan0', 'if1', 'vlan102']) {
      ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
      ip('link', 'set', dev, 'up');
      ip('link', 'set', `${dev}p`, 'up');
    }
    ip('addr', 'add', '10.0.0.1/24', 'dev', 'lan0');
    ip('addr', 'add', '198.51.100.2/24', 'dev', 'if1');
    ip('addr', 'add', '192.0.2.7/24', 'dev', 'vlan102');
    const env = `link lo up lower_up\nlink lan0 up lower_up\nlink if1 up lower_up\nlink vlan102 up lower_up
addr lan0 10.0.0.1/24\naddr if1 198.51.100.2/24\naddr vlan102 192.0.2.7/24 dynamic\n`;
    const steps = [
      env + 'route table main default via 192.0.2.1 dev vlan102 proto dhcp metric 20',
      env + 'route table main default via 192.0.2.254 dev vlan102 proto dhcp metric 20', // new gateway: replaces
    ];
    for (const snapshot of steps) {
      const world = parseSnapshot(snapshot);
      const ours = kernelViaIp();
      const kernel = { ...world, routes: [...world.routes, ...ours.routes], rules: ours.rules, nexthops: ours.nexthops };
      const facts = { kernel, leases: [], health: {} };
      const p = plan(config, facts);
      for (const c of diff(p.desired, facts.kernel, config)) run(formatChange(c));
      assert.deepEqual(diff(p.desired, kernelViaIp(), config).map(formatChange), []);
    }
    // Down: the deletions work and leave nothing of ours.
    for (const c of diff({ routes: [], rules: [], nexthops: [] }, kernelViaIp(), config)) run(formatChange(c));
    assert.deepEqual(kernelViaIp(), parseSnapshot(''));
    // The fake kernel agrees with the real one on what these commands do.
    const fake = new FakePort(parseSnapshot(steps[0]!));
    const p = plan(config, { kernel: parseSnapshot(steps[0]!), leases: [], health: {} });
    for (const c of diff(p.desired, parseSnapshot(steps[0]!), config)) await fake.apply(c);
    for (const c of diff(p.desired, parseSnapshot(steps[0]!), config)) run(formatChange(c));
    const real = kernelViaIp();
    const mine = fake.current();
    const routes = (rs: Route[]): string[] => rs.filter((r) => r.protocol === 117).map((r) => formatRoute(canonicalRoute(r))).sort();
    assert.deepEqual(routes(real.routes), routes(mine.routes));
    assert.deepEqual(real.rules.map(formatRule).sort(), mine.rules.map(formatRule).sort());
    assert.deepEqual(real.nexthops.map(formatNexthop).sort(), mine.nexthops.map(formatNexthop).sort());
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
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
