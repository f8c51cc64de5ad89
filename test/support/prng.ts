// A seeded pseudo-random source for tests that replay random worlds, mutate bytes or simulate loss.

/**
 * mulberry32: a small seeded PRNG, so a failing random run repeats from its seed.
 * Returns a function giving numbers in [0, 1); `seed` is taken as an unsigned 32-bit integer.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
