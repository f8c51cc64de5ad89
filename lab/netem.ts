// Real delay, jitter, loss and queues on a provider's path (issue 9, scenario 3), for health tests
// in the full-kernel guest (sch_netem and sch_tbf; this machine's kernel has no netem). Each
// qdisc sits in the provider's namespace: on `cust` it shapes what goes down to the router, on
// `wan` what goes up to the internet, so every direction is set on its own.
import { UplinkdError } from '../src/errors';
import { run } from './exec';
import type { ProviderName } from './faults';
import { PROVIDER_BACKBONE_IF, PROVIDER_CUSTOMER_IF, type LabInfo } from './topology';

export interface PathImpairment {
  /** One-way delay added in each direction (ms); RTT grows by twice this. */
  delayMs?: number;
  /** Uniform jitter around the delay (ms), netem's second delay argument. */
  jitterMs?: number;
  /** Random loss per direction (percent, 0-100), netem `loss`. */
  lossPercent?: number;
}

/** A satellite-like link: 300 ms RTT (150 ms each way) with 10 ms jitter. */
export const SATELLITE: PathImpairment = { delayMs: 150, jitterMs: 10 };
/** 20 % random loss in each direction. */
export const LOSSY: PathImpairment = { lossPercent: 20 };

/** netem arguments for `tc qdisc replace dev IF root netem ...` (tc-netem(8)). */
export function netemArgs(p: PathImpairment): string {
  const args: string[] = [];
  if (p.delayMs !== undefined) args.push(`delay ${p.delayMs}ms${p.jitterMs ? ` ${p.jitterMs}ms` : ''}`);
  if (p.lossPercent !== undefined) {
    if (!(p.lossPercent >= 0 && p.lossPercent <= 100)) throw new UplinkdError('usage', `loss must be 0..100 percent, not ${p.lossPercent}`);
    args.push(`loss ${p.lossPercent}%`);
  }
  if (args.length === 0) throw new UplinkdError('usage', 'a path impairment needs a delay or a loss');
  // netem's default queue (1000 packets) would itself drop under the lab's bursts at long delays
  return `netem ${args.join(' ')} limit 10000`;
}

/** Delay/jitter/loss on the provider's path, both directions (replaces what was there). */
export async function impairProvider(lab: LabInfo, provider: ProviderName, p: PathImpairment): Promise<void> {
  const q = netemArgs(p);
  await tcBatch(lab.ns[provider], [`qdisc replace dev ${PROVIDER_CUSTOMER_IF} root ${q}`, `qdisc replace dev ${PROVIDER_BACKBONE_IF} root ${q}`]);
}

/**
 * A bloated upload queue: what the router sends up leaves the provider towards the internet at
 * `rateKbit`, queued for up to `latencyMs` (tbf `latency`, tc-tbf(8)) before it is dropped.
 * 2500 ms is the saturated DSL upload of issue 10.
 */
export async function bufferbloat(lab: LabInfo, provider: ProviderName, rateKbit = 1000, latencyMs = 2500): Promise<void> {
  await tcBatch(lab.ns[provider], [`qdisc replace dev ${PROVIDER_BACKBONE_IF} root tbf rate ${rateKbit}kbit burst 16kb latency ${latencyMs}ms`]);
}

/** Removes every impairment of this module from the provider (idempotent). */
export async function clearImpairments(lab: LabInfo, provider: ProviderName): Promise<void> {
  for (const dev of [PROVIDER_CUSTOMER_IF, PROVIDER_BACKBONE_IF])
    await run('tc', ['-n', lab.ns[provider], 'qdisc', 'del', 'dev', dev, 'root'], { allowFail: true });
}

async function tcBatch(ns: string, commands: string[]): Promise<void> {
  await run('tc', ['-n', ns, '-batch', '-'], { input: commands.join('\n') + '\n' });
}
