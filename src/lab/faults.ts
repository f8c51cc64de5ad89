// Faults a provider can have while its link to the router stays up, for the health tests, the
// demo and the benchmarks: a dead upstream (blackhole), random loss, slow answers. Each one lives
// in the provider's (or the internet host's) namespace only and is undone by its counterpart.
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { UplinkdError } from '../errors';
import type { Cidr } from '../model/types';
import { inNs, ipIn, startInNs } from './exec';
import type { LabInfo } from './topology';

export type ProviderName = 'isp1' | 'isp2';

/** Everything behind the providers: the internet host's addresses (192.0.2.80 and any second target). */
export const INTERNET_NET: Cidr = '192.0.2.0/24';

/** nftables table of the loss fault, of its own: the lab's filter table is left alone. */
export const LOSS_TABLE = 'lab_loss';

function providerNs(lab: LabInfo, provider: ProviderName): string {
  return lab.ns[provider];
}

/**
 * The provider's upstream dies: its packets to the internet are silently discarded (a blackhole
 * route, no ICMP error), while the router's link, carrier, address and gateway stay as they were.
 */
export async function blackholeUpstream(lab: LabInfo, provider: ProviderName, net: Cidr = INTERNET_NET): Promise<void> {
  await ipIn(providerNs(lab, provider), ['route', 'replace', 'blackhole', net]);
}

/** Undoes blackholeUpstream (idempotent). */
export async function restoreUpstream(lab: LabInfo, provider: ProviderName, net: Cidr = INTERNET_NET): Promise<void> {
  await ipIn(providerNs(lab, provider), ['route', 'del', 'blackhole', net], { allowFail: true });
}

/** The ruleset of randomLoss: every forwarded packet, both directions, is dropped with `percent` % probability. */
export function lossRuleset(percent: number): string {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100)
    throw new UplinkdError('usage', `loss must be an integer percent 0..100, not ${percent}`);
  return `table ip ${LOSS_TABLE} {
  chain forward {
    type filter hook forward priority -10; policy accept;
    numgen random mod 100 < ${percent} counter drop comment "random loss ${percent}%"
  }
}
`;
}

/** Random loss on the provider's forwarding path (customer <-> internet, each direction independently). */
export async function randomLoss(lab: LabInfo, provider: ProviderName, percent: number): Promise<void> {
  const ns = providerNs(lab, provider);
  await clearLoss(lab, provider);
  await inNs(ns, 'nft', ['-f', '-'], { input: lossRuleset(percent) });
}

/** Undoes randomLoss (idempotent). */
export async function clearLoss(lab: LabInfo, provider: ProviderName): Promise<void> {
  await inNs(providerNs(lab, provider), 'nft', ['delete', 'table', 'ip', LOSS_TABLE], { allowFail: true });
}

/** Packets the loss fault dropped so far (0 when it is not in place). */
export async function lossDropped(lab: LabInfo, provider: ProviderName): Promise<number> {
  const r = await inNs(providerNs(lab, provider), 'nft', ['list', 'table', 'ip', LOSS_TABLE], { allowFail: true });
  return Number(/counter packets (\d+)/.exec(r.stdout)?.[1] ?? 0);
}

const SLOW_DNS_SCRIPT = path.join(__dirname, 'slow-dns.js');

export interface SlowAnswers {
  stop(): void;
}

/**
 * A DNS probe target on the internet host at `address`:`port` that answers every query (NXDOMAIN)
 * after `delayMs`, but only queries from `slowFrom` (e.g. one provider's customer network);
 * everyone else is answered at once. For `method: dns` monitors: a slow path, not a dead one
 * (this kernel has no netem). The process lives in the inet namespace, so labDown ends it too.
 */
export async function slowAnswers(lab: LabInfo, address: string, delayMs: number, slowFrom: Cidr, port = 53): Promise<SlowAnswers> {
  const { child } = await startInNs(
    lab.ns.inet,
    process.execPath,
    [SLOW_DNS_SCRIPT, '--address', address, '--port', String(port), '--delay-ms', String(delayMs), '--slow-from', slowFrom],
    /^listening /,
  );
  return { stop: () => stopQuietly(child) };
}

function stopQuietly(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}
