// Stable identities: an uplink's table number (which is also its nexthop id) and its pinning
// mark are derived from its name, never from its position in the list, so adding, removing or
// reordering uplinks leaves every other uplink's table, nexthop and mark as they were, and a
// reload keeps live pinned connections on their uplink (docs/design.md, "Identities").

/** Derived tables live in tableBase+1 .. tableBase+TABLE_SLOTS. */
export const TABLE_SLOTS = 999;

/**
 * FNV-1a (32 bit) of the UTF-8 bytes of `text` (http://www.isthe.com/chongo/tech/comp/fnv/).
 * Small, well spread for short names, and the same on every machine and Node version.
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Slot numbers 1..slots for `names`: each name's home slot is its hash, and names whose slots
 * collide (with each other or with `taken`) are resolved in name order, the later ones probing
 * hash(name/1), hash(name/2), ... and finally the lowest free slot. The result depends on the set
 * of names only, not on their order; a name keeps its slot unless a new name takes it, which
 * needs the new name to hash to the same slot and sort before it.
 * Returns undefined for a name when every slot is taken (the caller reports that).
 * `names` must be distinct; `taken` are slots that are not free (explicit numbers).
 */
export function stableSlots(names: readonly string[], slots: number, taken: ReadonlySet<number> = new Set()): Map<string, number | undefined> {
  const used = new Set([...taken].filter((s) => s >= 1 && s <= slots));
  const out = new Map<string, number | undefined>();
  const probe = (name: string, k: number): number => (fnv1a32(k === 0 ? name : `${name}/${k}`) % slots) + 1;
  // Home slots first, in name order, so that a colliding name never pushes another off its home slot.
  const sorted = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const waiting: string[] = [];
  for (const name of sorted) {
    const home = probe(name, 0);
    if (used.has(home)) waiting.push(name);
    else {
      used.add(home);
      out.set(name, home);
    }
  }
  for (const name of waiting) {
    let slot: number | undefined;
    for (let k = 1; k <= 8 && slot === undefined; k++) {
      const s = probe(name, k);
      if (!used.has(s)) slot = s;
    }
    for (let s = 1; s <= slots && slot === undefined; s++) if (!used.has(s)) slot = s;
    if (slot !== undefined) used.add(slot);
    out.set(name, slot);
  }
  return out;
}
