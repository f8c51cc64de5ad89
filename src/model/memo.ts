// One remembered result of a pure function, for the daemon's cycles that find nothing changed.

/**
 * The last result of a pure computation, reused while its key stays the same: `get(key, compute)` returns the
 * value stored with the previous call when `key === ` its key, else calls `compute()`, stores the pair and returns
 * the new value. The caller builds `key` from every input `compute` reads (e.g. the inputs' JSON), so a hit can
 * never be stale; a value shared between calls must be immutable (frozen), since every caller gets the same one.
 */
export class LastResult<K, V> {
  private last: { key: K; value: V } | undefined;

  /** The value for `key`: the stored one when `key` is the last key, else `compute()` (then stored). */
  get(key: K, compute: () => V): V {
    if (this.last !== undefined && this.last.key === key) return this.last.value;
    const value = compute();
    this.last = { key, value };
    return value;
  }
}
