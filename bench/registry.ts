// The benchmarks `npm run bench` runs, in this order. Adding one: write a module exporting a
// `Benchmark` and list it here; its block in docs/benchmarks.md is keyed by `name`.
import type { Section } from './report';
import { renumberBenchmark } from './renumber';
import { applyBenchmark } from './apply';
import { noopBenchmark } from './noop';
import { healthDetectBenchmark } from './health-detect';
import { healthLossBenchmark } from './health-loss';
import { healthCostBenchmark } from './health-cost';
import { idleBenchmark } from './idle';
import { busyRouterBenchmark } from './busy-router';
import { statusBenchmark } from './status';
import { nftEventsBenchmark } from './nft-events';
import { guestSoakBenchmark } from './guest-soak';

export interface BenchOptions {
  /** Fewer iterations and shorter windows: a smoke run, numbers marked as such. */
  quick: boolean;
  /** Progress lines for the person running the benchmarks (stderr). */
  progress(line: string): void;
}

export interface Benchmark {
  /** Short key: `--only NAME`, and the block marker in docs/benchmarks.md. */
  name: string;
  run(opts: BenchOptions): Promise<Section>;
}

export const BENCHMARKS: readonly Benchmark[] = [
  renumberBenchmark,
  applyBenchmark,
  noopBenchmark,
  idleBenchmark,
  busyRouterBenchmark,
  statusBenchmark,
  nftEventsBenchmark,
  healthDetectBenchmark,
  healthLossBenchmark,
  healthCostBenchmark,
  guestSoakBenchmark,
];
