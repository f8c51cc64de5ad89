// The last hour of each uplink's health, in memory, for the status page and /status.json: RTT, loss
// and verdict sampled from the monitor's statistics and folded into fixed 5 s buckets held in a
// ring per uplink, plus the state changes with the reason the judgement gave. Pure: the caller
// feeds samples and changes with their time; nothing here reads a clock or starts a timer.
//
// Why 5 s buckets of 1 s samples: 1 s is the steady probe period (one round per second), so every
// round's effect is seen; a bucket of 5 s keeps an hour at 720 points per series (a point per
// pixel of a chart about 720 px wide, and the page refreshes every 5 s anyway) and an uplink's
// ring at a fixed 720 slots whatever the sample rate. A state shorter than a bucket is not lost:
// the bucket keeps the worst verdict it saw, and the change itself is recorded to the millisecond.
import type { HealthVerdict } from '../model/facts';
import type { HealthStats } from './state';

/** How far back the history reaches, ms. */
export const HISTORY_SPAN_MS = 3_600_000;
/** Width of one bucket, ms. */
export const HISTORY_BUCKET_MS = 5_000;
/** At most this many state changes kept per uplink (a flapping uplink must not grow memory). */
export const HISTORY_MAX_CHANGES = 200;

/** One bucket: the samples taken in [at, at + bucketMs). */
export interface HistoryPoint {
  /** Bucket start, epoch ms (a multiple of bucketMs). */
  at: number;
  /** Mean of the sampled RTTs, ms, two decimals; null when no sample had an answer. */
  rttMs: number | null;
  /** Highest sampled loss, percent, one decimal (a short burst is not averaged away); null without any. */
  lossPct: number | null;
  /** The worst verdict sampled: down > degraded > unknown > up. */
  state: HealthVerdict;
}

/** A verdict change as the state machine made it. */
export interface HistoryChange {
  /** Epoch ms. */
  at: number;
  from: HealthVerdict;
  to: HealthVerdict;
  /** The state machine's reason text. */
  reason: string;
}

export interface UplinkHistory {
  /** Oldest first. */
  points: HistoryPoint[];
  /** Oldest first, within the span. */
  changes: HistoryChange[];
}

/** The history as served: what it covers and each uplink's buckets and changes. */
export interface HistorySnapshot {
  /** When the snapshot was taken, epoch ms; the last bucket may still be filling. */
  at: number;
  spanMs: number;
  bucketMs: number;
  uplinks: Record<string, UplinkHistory>;
}

const SEVERITY: Record<HealthVerdict, number> = { up: 0, unknown: 1, degraded: 2, down: 3 };

/** A ring slot's running sums; `bucket` is the epoch bucket number it holds (-1: empty). */
interface Slot {
  bucket: number;
  rttSum: number;
  rttCount: number;
  lossMax: number | null;
  /** null until the first sample or change lands in it. */
  state: HealthVerdict | null;
}

interface Ring {
  slots: Slot[];
  changes: HistoryChange[];
  /** Last bucket written, to forget an uplink an hour after it was last seen. */
  lastBucket: number;
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/**
 * Per-uplink health history of the last `spanMs` (default 1 hour) in buckets of `bucketMs` (default 5 s): RTT, loss
 * and worst verdict per bucket, plus up to HISTORY_MAX_CHANGES state changes. Times are epoch milliseconds given by
 * the caller; memory is fixed per uplink (spanMs / bucketMs slots).
 */
export class HealthHistory {
  readonly spanMs: number;
  readonly bucketMs: number;
  private readonly capacity: number;
  private readonly rings = new Map<string, Ring>();

  /** `spanMs` must be a multiple of `bucketMs`; both positive. Throws RangeError otherwise. */
  constructor(opts: { spanMs?: number; bucketMs?: number } = {}) {
    this.spanMs = opts.spanMs ?? HISTORY_SPAN_MS;
    this.bucketMs = opts.bucketMs ?? HISTORY_BUCKET_MS;
    if (!(this.bucketMs > 0) || !(this.spanMs >= this.bucketMs) || this.spanMs % this.bucketMs !== 0) {
      throw new RangeError(`history span ${this.spanMs} ms must be a positive multiple of the bucket ${this.bucketMs} ms`);
    }
    this.capacity = this.spanMs / this.bucketMs;
  }

  /**
   * Folds one sample per uplink (HealthMonitor.stats() at `at`, epoch ms) into its bucket. Uplinks
   * not sampled for a whole span are forgotten (a removed or renamed uplink).
   */
  sample(at: number, stats: Record<string, HealthStats>): void {
    for (const [name, s] of Object.entries(stats)) {
      const slot = this.slotFor(name, at);
      if (s.rttMs !== null) {
        slot.rttSum += s.rttMs;
        slot.rttCount += 1;
      }
      if (s.lossPct !== null) slot.lossMax = Math.max(slot.lossMax ?? 0, s.lossPct);
      this.worsen(slot, s.state);
    }
    const oldest = this.bucketOf(at) - this.capacity;
    for (const [name, ring] of this.rings) if (ring.lastBucket <= oldest) this.rings.delete(name);
  }

  /** Records a verdict change of `uplink` at `at` (epoch ms; the monitor's HealthStats.since). */
  change(uplink: string, c: HistoryChange): void {
    const ring = this.ringOf(uplink);
    ring.changes.push({ at: c.at, from: c.from, to: c.to, reason: c.reason });
    if (ring.changes.length > HISTORY_MAX_CHANGES) ring.changes.splice(0, ring.changes.length - HISTORY_MAX_CHANGES);
    // The bucket of the change shows the new verdict even if no sample falls after it.
    this.worsen(this.slotFor(uplink, c.at), c.to);
  }

  /** The buckets and changes within the span ending at `at` (epoch ms), oldest first, uplinks by name. */
  snapshot(at: number): HistorySnapshot {
    const current = this.bucketOf(at);
    const since = at - this.spanMs;
    const uplinks: Record<string, UplinkHistory> = {};
    for (const name of [...this.rings.keys()].sort()) {
      const ring = this.rings.get(name)!;
      const points = ring.slots
        .filter((s) => s.bucket > current - this.capacity && s.bucket <= current)
        .sort((a, b) => a.bucket - b.bucket)
        .map((s) => ({
          at: s.bucket * this.bucketMs,
          rttMs: s.rttCount ? round(s.rttSum / s.rttCount, 2) : null,
          lossPct: s.lossMax === null ? null : round(s.lossMax, 1),
          state: s.state ?? 'unknown',
        }));
      uplinks[name] = { points, changes: ring.changes.filter((c) => c.at > since && c.at <= at) };
    }
    return { at, spanMs: this.spanMs, bucketMs: this.bucketMs, uplinks };
  }

  private bucketOf(at: number): number {
    return Math.floor(at / this.bucketMs);
  }

  private ringOf(uplink: string): Ring {
    let ring = this.rings.get(uplink);
    if (!ring) {
      ring = { slots: [], changes: [], lastBucket: -Infinity };
      this.rings.set(uplink, ring);
    }
    return ring;
  }

  /** The slot for `at`'s bucket, emptied first when it still holds a bucket one span older. */
  private slotFor(uplink: string, at: number): Slot {
    const ring = this.ringOf(uplink);
    const bucket = this.bucketOf(at);
    const index = ((bucket % this.capacity) + this.capacity) % this.capacity;
    let slot = ring.slots[index];
    if (!slot || slot.bucket !== bucket) {
      slot = { bucket, rttSum: 0, rttCount: 0, lossMax: null, state: null };
      // Sparse until the ring has gone round once: memory follows what was sampled, at most `capacity` slots.
      ring.slots[index] = slot;
    }
    ring.lastBucket = Math.max(ring.lastBucket, bucket);
    return slot;
  }

  private worsen(slot: Slot, state: HealthVerdict): void {
    if (slot.state === null || SEVERITY[state] > SEVERITY[slot.state]) slot.state = state;
  }
}
