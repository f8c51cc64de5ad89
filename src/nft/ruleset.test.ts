import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testConfig } from '../../test/support/test-config';
import type { Config } from '../config/types';
import { pinMarks } from './marks';
import { readPinning, type NftRunner } from './nft';
import { planPinning } from './pinning';
import { commentHash, renderPinning } from './ruleset';

const config = (more: Partial<Config> = {}): Config => testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
  { name: 'isp2', interface: 'vlan102' },
], { lan: ['if0'], pinning: { enabled: true, markMask: 0x00ff0000 }, ...more });

/** The rule lines of one chain, without their comments. */
function chain(table: string, name: string): string[] {
  const lines = table.split('\n');
  const start = lines.indexOf(`\tchain ${name} {`);
  assert.ok(start >= 0, `no chain ${name} in\n${table}`);
  const end = lines.indexOf('\t}', start);
  return lines.slice(start + 2, end).map((l) => l.trim().replace(/ comment ".*"$/, ''));
}

test('marks: (index + 1) << the lowest bit of the mask, none when pinning is off', () => {
  assert.deepEqual(pinMarks(config()).map((m) => [m.uplink, m.interface, m.table, m.mark]), [
    ['isp1', 'if1', 1001, 0x00010000], ['isp2', 'vlan102', 1002, 0x00020000],
  ]);
  assert.deepEqual(pinMarks(config({ pinning: { enabled: true, markMask: 0xf0 } })).map((m) => m.mark), [0x10, 0x20]);
  assert.deepEqual(pinMarks(config({ pinning: { enabled: true, markMask: 0xc0000000 } })).map((m) => m.mark), [0x40000000, 0x80000000]);
  assert.deepEqual(pinMarks(config({ pinning: { enabled: false, markMask: 0x00ff0000 } })), []);
  assert.deepEqual(pinMarks(config({ pinning: undefined })), []);
});

test('the table pins on the way in and out and routes pinned packets from inside, touching only the mask bits and leaving packets with foreign mark bits alone', () => {
  const r = renderPinning(config());
  assert.ok(r);
  assert.match(r.table, /^table ip uplinkd \{\n/);
  assert.deepEqual(chain(r.table, 'prerouting'), [
    'iifname "if1" ct direction original meta mark & 0xff00ffff == 0x00000000 ct mark & 0x00ff0000 == 0x00000000 ct mark set ct mark & 0xff00ffff | 0x00010000',
    'iifname "vlan102" ct direction original meta mark & 0xff00ffff == 0x00000000 ct mark & 0x00ff0000 == 0x00000000 ct mark set ct mark & 0xff00ffff | 0x00020000',
    // One rule for every uplink: the packet mark becomes the connection's mask bits (the other bits are 0, by `own`).
    'iifname != { "if1", "vlan102" } meta mark & 0xff00ffff == 0x00000000 ct mark & 0x00ff0000 { 0x00010000, 0x00020000 } meta mark set ct mark & 0x00ff0000',
  ]);
  assert.deepEqual(chain(r.table, 'output'), [
    'meta mark & 0xff00ffff == 0x00000000 ct mark & 0x00ff0000 { 0x00010000, 0x00020000 } meta mark set ct mark & 0x00ff0000',
  ]);
  assert.deepEqual(chain(r.table, 'postrouting'), [
    'oifname "if1" meta mark & 0xff00ffff == 0x00000000 ct mark & 0x00ff0000 == 0x00000000 ct mark set ct mark & 0xff00ffff | 0x00010000',
    'oifname "vlan102" meta mark & 0xff00ffff == 0x00000000 ct mark & 0x00ff0000 == 0x00000000 ct mark set ct mark & 0xff00ffff | 0x00020000',
  ]);
  // Mangle priority, before DNAT (-100) and the routing decision; output is a route chain so a new mark re-routes.
  assert.match(r.table, /chain prerouting \{\n\t\ttype filter hook prerouting priority mangle; policy accept;/);
  assert.match(r.table, /chain output \{\n\t\ttype route hook output priority mangle; policy accept;/);
  assert.match(r.table, /chain postrouting \{\n\t\ttype filter hook postrouting priority mangle; policy accept;/);
  assert.equal(r.rules, 6);
  // Every rule carries the table's hash; the script replaces only this table.
  const comments = [...r.table.matchAll(/^\t\t.* comment "([^"]*)"$/gm)].map((m) => m[1]!);
  assert.deepEqual(comments.map((c) => c.replace(/ #.*/, '')), [
    'isp1: pin arriving', 'isp2: pin arriving', 'route pinned', 'route pinned', 'isp1: pin leaving', 'isp2: pin leaving',
  ]);
  assert.ok(comments.every((c) => commentHash(c) === r.hash), r.table);
  assert.equal(r.script, `table ip uplinkd\ndelete table ip uplinkd\n${r.table}`);
  assert.doesNotMatch(r.script, /flush ruleset|198\.51\.100/);
});

test('rules: two per uplink and two for all of them; the sets list interfaces and marks sorted, whatever the config order', () => {
  const uplinks = [
    { name: 'zeta', interface: 'wan10', markIndex: 9 },
    { name: 'alpha', interface: 'wan2', markIndex: 3 },
    { name: 'mid', interface: 'eth0', markIndex: 12 },
  ];
  const pinning = { enabled: true, markMask: 0x0000ff00 };
  const r = renderPinning(testConfig(uplinks, { pinning }))!;
  assert.equal(r.rules, 2 * 3 + 2);
  const routePinned = 'meta mark & 0xffff00ff == 0x00000000 ct mark & 0x0000ff00 { 0x00000300, 0x00000900, 0x00000c00 } meta mark set ct mark & 0x0000ff00';
  assert.equal(chain(r.table, 'prerouting').at(-1), `iifname != { "eth0", "wan10", "wan2" } ${routePinned}`);
  assert.deepEqual(chain(r.table, 'output'), [routePinned]);
  for (const order of [[2, 0, 1], [1, 2, 0], [2, 1, 0]]) {
    const other = renderPinning(testConfig(order.map((i) => uplinks[i]!), { pinning }))!;
    assert.equal(chain(other.table, 'prerouting').at(-1), chain(r.table, 'prerouting').at(-1), `order ${order}`);
    assert.deepEqual(chain(other.table, 'output'), chain(r.table, 'output'), `order ${order}`);
  }
  // The marks are sorted as numbers: 0x00000900 before 0x00000c00 before 0x00001000 (not as written text).
  const wide = renderPinning(testConfig([{ name: 'a', interface: 'a0', markIndex: 16 }, { name: 'b', interface: 'b0', markIndex: 9 }], { pinning }))!;
  assert.match(chain(wide.table, 'output')[0]!, /\{ 0x00000900, 0x00001000 \}/);
  // One uplink: a one-element set (nft stores it as a plain compare).
  const one = renderPinning(testConfig([uplinks[0]!], { pinning }))!;
  assert.equal(one.rules, 4);
  assert.deepEqual(chain(one.table, 'output'), ['meta mark & 0xffff00ff == 0x00000000 ct mark & 0x0000ff00 { 0x00000900 } meta mark set ct mark & 0x0000ff00']);
});

test('the hash follows the content: interfaces, marks and mask change it; addresses, weights and the order of the uplinks do not', () => {
  const base = renderPinning(config())!;
  assert.equal(renderPinning(config())!.hash, base.hash);
  const same = testConfig([
    { name: 'isp1', interface: 'if1', address: '203.0.113.9/24', gateway: '203.0.113.1', weight: 7 },
    { name: 'isp2', interface: 'vlan102', tier: 2 },
  ], { lan: ['if0'], pinning: { enabled: true, markMask: 0x00ff0000 } });
  assert.equal(renderPinning(same)!.hash, base.hash);
  // An uplink's mark follows its name, not its place (src/config/identity.ts), as markIndex gives here.
  const swapped = testConfig([{ name: 'isp2', interface: 'vlan102', markIndex: 2 }, { name: 'isp1', interface: 'if1', markIndex: 1 }], { lan: ['if0'], pinning: { enabled: true, markMask: 0x00ff0000 } });
  assert.equal(renderPinning(swapped)!.table, base.table);
  const other = [
    config({ pinning: { enabled: true, markMask: 0x0000ff00 } }),
    testConfig([{ name: 'isp1', interface: 'if9' }, { name: 'isp2', interface: 'vlan102' }], { pinning: { enabled: true, markMask: 0x00ff0000 } }),
    testConfig([{ name: 'isp2', interface: 'vlan102' }, { name: 'isp1', interface: 'if1' }], { pinning: { enabled: true, markMask: 0x00ff0000 } }),
  ];
  for (const c of other) assert.notEqual(renderPinning(c)!.hash, base.hash);
  assert.match(base.hash, /^[0-9a-f]{16}$/);
});

test('the whole table (pinning, exec and NAT rules) is in uplink name order, whatever the order in the file', () => {
  const uplinks = [
    { name: 'zeta', interface: 'wan10', markIndex: 9 },
    { name: 'alpha', interface: 'wan2', markIndex: 3 },
    { name: 'mid', interface: 'eth0', markIndex: 12 },
  ];
  const render = (order: number[]) => {
    const c = testConfig(order.map((i) => uplinks[i]!), { pinning: { enabled: true, markMask: 0x0000ff00 }, exec: { cgroup: 'uplinkd' } });
    for (const u of c.uplinks) if (u.name !== 'mid') u.nat = u.name === 'zeta' ? { kind: 'masquerade' } : { kind: 'snat', address: '192.0.2.7' };
    return renderPinning(c, '/sys/fs/cgroup')!;
  };
  const r = render([0, 1, 2]);
  const names = (chainName: string) => [...r.table.split(`chain ${chainName} {`)[1]!.split('\t}')[0]!.matchAll(/comment "(\w+): /g)].map((m) => m[1]);
  assert.deepEqual(names('prerouting'), ['alpha', 'mid', 'zeta']);
  assert.deepEqual(names('output'), ['alpha', 'mid', 'zeta'], 'the exec rules');
  assert.deepEqual(names('postrouting'), ['alpha', 'mid', 'zeta']);
  assert.deepEqual(names('nat_postrouting'), ['alpha', 'mid', 'zeta', 'alpha', 'zeta'], 'exec masquerade first, then the uplinks\' NAT');
  for (const order of [[2, 0, 1], [1, 2, 0], [2, 1, 0]]) assert.equal(render(order).table, r.table, `order ${order}`);
});

test('no table when pinning is off', () => {
  assert.equal(renderPinning(config({ pinning: { enabled: false, markMask: 0x00ff0000 } })), undefined);
  assert.equal(renderPinning(config({ pinning: undefined })), undefined);
});

/** 64 uplinks with the longest names the config allows. */
function bigConfig(): Config {
  const uplinks = Array.from({ length: 64 }, (_, i) => ({
    name: `uplink-with-a-long-name-${String(i).padStart(7, '0')}`, // 32 characters
    interface: `veth-up${String(i).padStart(4, '0')}`, // 15 characters, the kernel's maximum
    address: `10.1.${i}.2/24`,
    gateway: `10.1.${i}.1`,
  }));
  return testConfig(uplinks, { lan: ['if0'], pinning: { enabled: true, markMask: 0x00ff0000 } });
}

test('every comment fits nft\'s 128-byte limit, also with 64 uplinks of the longest names', () => {
  const r = renderPinning(bigConfig());
  assert.ok(r);
  const comments = [...r.table.matchAll(/comment "([^"]*)"/g)].map((m) => m[1]!);
  assert.equal(comments.length, 1 + 64 * 2 + 2);
  assert.equal(r.rules, 64 * 2 + 2);
  for (const c of comments) assert.ok(Buffer.byteLength(c) <= 128, `${Buffer.byteLength(c)} bytes: ${c}`);
});

/** An NftRunner running the nft program inside namespace `ns`. */
function nftIn(ns: string): NftRunner {
  return async (args, input) => {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { input: input ?? '', encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

test('nft loads the table for 1, 2 and 64 uplinks (in a throwaway namespace) and reads it back as in place', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: nft talks to the kernel inside a namespace');
  if (spawnSync('nft', ['--version']).status !== 0) return t.skip('nft is not installed (Debian package nftables)');
  const ns = `u10r${process.pid % 1000}-nft`;
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
  try {
    const run = nftIn(ns);
    const sizes: [string, Config][] = [
      ['1 uplink', testConfig([{ name: 'isp1', interface: 'if1' }], { pinning: { enabled: true, markMask: 0x7f000000 } })],
      ['2 uplinks', config()],
      ['64 uplinks', bigConfig()],
      ['2 uplinks with masquerade and snat', (() => {
        const c = config();
        return { ...c, uplinks: [{ ...c.uplinks[0]!, nat: { kind: 'masquerade' } }, { ...c.uplinks[1]!, nat: { kind: 'snat', address: '192.0.2.9' } }] };
      })()],
    ];
    for (const [what, c] of sizes) {
      const want = renderPinning(c)!;
      const r = await run(['-f', '-'], want.script);
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      // The anonymous sets are part of their rules: the layout shows only the chains, the count every rule.
      // What the rules do, as nft reads them back (normalised, src/nft/rule-effect.ts), is what was written.
      assert.deepEqual(await readPinning(run), { kind: 'present', hash: want.hash, rules: want.rules, effect: want.effect, layout: want.layout }, what);
      assert.equal(planPinning(c, await readPinning(run)).change, undefined, what);
    }
    // Why anonymous sets: the kernel refuses to change a set bound to a rule, so the sets cannot change without the
    // rules, whose hashes and count readPinning compares (a named set's elements could change unnoticed).
    const two = renderPinning(config())!;
    assert.equal((await run(['-f', '-'], two.script)).code, 0);
    const debug = spawnSync('ip', ['netns', 'exec', ns, 'nft', '--debug=netlink', 'list', 'table', 'ip', 'uplinkd'], { encoding: 'utf8' });
    const sets = [...new Set([...debug.stdout.matchAll(/@(__set\d+)/g)].map((m) => m[1]!))];
    assert.equal(sets.length, 3, debug.stdout);
    for (const set of sets) {
      for (const op of ['add', 'delete']) {
        const r = await run([op, 'element', 'ip', 'uplinkd', set, '{ 0x00050000 }']);
        assert.notEqual(r.code, 0, `${op} element ${set}`);
        assert.match(r.stderr, /Device or resource busy|Operation not supported|Invalid argument|mismatch/, `${op} element ${set}: ${r.stderr}`);
      }
    }
    assert.equal(planPinning(config(), await readPinning(run)).change, undefined);
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
});

test('nat: masquerade and snat per uplink in a chain of the same table, also without pinning', () => {
  const natConfig = (pinning: boolean): Config => {
    const c = config(pinning ? {} : { pinning: { enabled: false, markMask: 0x00ff0000 } });
    c.uplinks[0]!.nat = { kind: 'snat', address: '198.51.100.2' };
    c.uplinks[1]!.nat = { kind: 'masquerade' };
    return c;
  };
  const withPinning = renderPinning(natConfig(true))!;
  assert.deepEqual(chain(withPinning.table, 'nat_postrouting'), [
    'oifname "if1" snat to 198.51.100.2', 'oifname "vlan102" masquerade',
  ]);
  assert.equal(withPinning.rules, 6 + 2);
  const natOnly = renderPinning(natConfig(false))!;
  assert.equal(natOnly.rules, 2);
  assert.ok(!natOnly.table.includes('chain prerouting'), natOnly.table);
  assert.match(natOnly.summary, /^nat isp1: snat to 198\.51\.100\.2, isp2: masquerade$/);
  assert.equal(renderPinning(config({ pinning: { enabled: false, markMask: 0x00ff0000 } })), undefined);
  // nft itself accepts it (root: checked in a throwaway namespace).
  if (process.getuid?.() === 0) {
    const ns = `uplinkd-nat-${process.pid}`;
    spawnSync('ip', ['netns', 'add', ns]);
    try {
      for (const t of [withPinning, natOnly]) {
        const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: t.script, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      }
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  }
});

test('renderPinning remembers its last table: equal inputs share one frozen result, any changed input renders afresh', () => {
  const base = renderPinning(config())!;
  assert.equal(renderPinning(config())!, base, 'an equal config (another object) returns the remembered table');
  assert.ok(Object.isFrozen(base) && Object.isFrozen(base.cgroups));
  assert.throws(() => { (base as { rules: number }).rules = 0; }, TypeError);
  const exec = (root: string) => renderPinning(config({ exec: { cgroup: 'uplinkd' } }), root)!;
  const changed: [string, () => ReturnType<typeof renderPinning>][] = [
    ['mask', () => renderPinning(config({ pinning: { enabled: true, markMask: 0x0000ff00 } }))],
    ['an interface', () => renderPinning(testConfig([{ name: 'isp1', interface: 'if9' }, { name: 'isp2', interface: 'vlan102' }], { pinning: { enabled: true, markMask: 0x00ff0000 } }))],
    ['NAT', () => {
      const c = config();
      c.uplinks[1]!.nat = { kind: 'masquerade' };
      return renderPinning(c);
    }],
    ['exec cgroups', () => exec('/sys/fs/cgroup')],
    ['the cgroup v2 mount point', () => exec('/sys/fs/cgroup/unified')],
  ];
  let previous = base;
  for (const [what, render] of changed) {
    const r = render()!;
    assert.notEqual(r.hash, previous.hash, `${what}: a new table`);
    assert.notEqual(r.table, previous.table, what);
    previous = r;
  }
  assert.match(exec('/sys/fs/cgroup/unified').table, /socket cgroupv2 level 2 "unified\/uplinkd\/isp1"/);
  assert.equal(renderPinning(config())!.table, base.table, 'and back again');
});
