// `plan --format ip` (model/text.ts's formatChange of the planner's and diff's changes) against the real kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { KernelState, Route } from '../model/types';
import { canonicalRoute } from '../model/identity';
import { formatChange, formatNexthop, formatRoute, formatRule, parseNexthop, parseRoute, parseRule, parseSnapshot } from '../model/text';
import { plan } from '../plan/planner';
import { FakePort } from '../../test/support/fake-port';
import { testConfig } from '../../test/support/test-config';
import { diff } from './diff';

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
