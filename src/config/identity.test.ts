import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fnv1a32, stableSlots } from './identity';
import { parseConfig } from './load';

test('fnv1a32 matches the published FNV-1a test vectors', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
});

test('slots do not depend on the order of the names', () => {
  const names = ['isp1', 'isp2', 'lte', 'flets', 'cloud', 'backup'];
  const want = stableSlots(names, 255);
  const reversed = stableSlots([...names].reverse(), 255);
  const rotated = stableSlots([...names.slice(3), ...names.slice(0, 3)], 255);
  for (const n of names) {
    assert.equal(reversed.get(n), want.get(n), n);
    assert.equal(rotated.get(n), want.get(n), n);
  }
});

test('colliding names are resolved by name order, all slots distinct, taken slots skipped', () => {
  // With 3 slots and 3 names some must collide; every name still gets its own slot.
  const three = stableSlots(['c', 'a', 'b'], 3);
  assert.deepEqual([...three.values()].sort(), [1, 2, 3]);
  assert.deepEqual(stableSlots(['b', 'c', 'a'], 3), three);
  const taken = stableSlots(['a', 'b'], 3, new Set([1, 2]));
  assert.deepEqual([taken.get('a'), taken.get('b')].sort(), [3, undefined].sort());
  // Many names into a small range: distinct while there is room.
  const many = Array.from({ length: 200 }, (_, i) => `u${i}`);
  const slots = stableSlots(many, 255);
  assert.equal(new Set(slots.values()).size, 200);
  assert.ok([...slots.values()].every((s) => s !== undefined && s >= 1 && s <= 255));
});

test('a config that inserts an uplink at the top or reorders keeps every other uplink\'s table and mark', () => {
  const uplink = (name: string, i: number): string =>
    `  - {name: ${name}, interface: if${i}, address: 10.${i}.0.2/24, gateway: 10.${i}.0.1}\n`;
  const load = (names: string[]) => {
    const c = parseConfig(`uplinks:\n${names.map((n) => uplink(n, Number(n.slice(3)))).join('')}`, 'test.yaml');
    return new Map(c.uplinks.map((u) => [u.name, { table: u.table, mark: u.markIndex, iface: u.interface }]));
  };
  const before = load(['isp1', 'isp2', 'isp3']);
  const inserted = load(['isp9', 'isp1', 'isp2', 'isp3']);
  const reordered = load(['isp3', 'isp1', 'isp2']);
  for (const name of ['isp1', 'isp2', 'isp3']) {
    assert.deepEqual(inserted.get(name), before.get(name), `${name} after an insertion at the top`);
    assert.deepEqual(reordered.get(name), before.get(name), `${name} after a reorder`);
  }
  assert.equal(new Set([...inserted.values()].map((v) => v.table)).size, 4);
  assert.equal(new Set([...inserted.values()].map((v) => v.mark)).size, 4);
});
