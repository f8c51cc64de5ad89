// Pure statistics for benchmark samples (milliseconds or any unit).
import { UplinkdError } from '../src/errors';

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The p-th percentile (0..100) by the nearest-rank method: the smallest sample with at
 * least p % of the samples at or below it. p99 of 100 samples is the 99th smallest.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new UplinkdError('usage', 'percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new UplinkdError('usage', `percentile ${p} is not within 0..100`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/** The middle sample, or the mean of the two middle ones. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new UplinkdError('usage', 'median of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new UplinkdError('usage', 'summary of no samples');
  return {
    n: samples.length,
    min: Math.min(...samples),
    p50: median(samples),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: Math.max(...samples),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

/** A number for a table cell: 3 significant digits, no exponent. */
export function fmt(v: number, unit = ''): string {
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return `${v.toFixed(digits)}${unit}`;
}
