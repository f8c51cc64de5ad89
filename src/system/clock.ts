// Two clocks, both in milliseconds since the epoch. What measures a span (RTOs, silence, grace periods, backoffs,
// when the next probe round is due) runs on the monotonic one, which a step of the system clock does not move
// (NTP's first sync on a machine without an RTC, chrony's makestep, `date -s`, a VM restored from a snapshot);
// the times shown to people (status, history, log lines) are the wall clock's.

/**
 * Now on the monotonic clock, whole ms since the epoch: the wall clock when the process started plus the time
 * elapsed since on CLOCK_MONOTONIC (performance.timeOrigin + performance.now(), libuv's uv_hrtime), rounded down
 * like Date.now(). Never goes back; equals Date.now() until the system clock is stepped or slewed.
 */
export function monotonicNow(): number {
  return Math.floor(performance.timeOrigin + performance.now());
}

/**
 * The wall-clock time (ms since the epoch) of `at`, a time read from the clock `now` (ms): `at` moved by how far the
 * two clocks are apart at this moment, so a span between `at` and now keeps its length on either clock.
 */
export function wallTime(at: number, now: () => number, wall: () => number): number {
  return at + (wall() - now());
}
