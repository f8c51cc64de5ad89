// Faults a provider can have while its link to the router stays up, for the health tests, the
// demo and the benchmarks: a dead upstream (blackhole, or ICMP errors), random loss, slow answers. Each one lives
// in the provider's (or the internet host's) namespace only and is undone by its counterpart.
// The target faults (rate limit, silent target) use the lab's firewall (lab.firewall): nftables on
// the host kernel, a chain of their own in legacy iptables in the full-kernel guest (docs/guest-lab.md).
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import type { Cidr } from '../src/model/types';
import { inNs, ipIn, startInNs } from './exec';
import { ownChainPackets, removeOwnChain, replaceOwnChain, type OwnChain } from './firewall';
import { PROVIDER_BACKBONE_IF, type LabInfo } from './topology';

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

/**
 * How a provider with a dead upstream answers its customers' packets to the internet, as an
 * ip-route(8) route type in its namespace: `unreachable` sends ICMP host unreachable, `prohibit`
 * communication administratively prohibited, `throw` (no route left in any table) network
 * unreachable. The router sends these errors from its customer-side address (the gateway).
 */
export type RefusalRoute = 'unreachable' | 'prohibit' | 'throw';

/** The provider's upstream dies and the provider says so: its router answers with ICMP errors (rate limited by its kernel). */
export async function refuseUpstream(lab: LabInfo, provider: ProviderName, route: RefusalRoute, net: Cidr = INTERNET_NET): Promise<void> {
  await ipIn(providerNs(lab, provider), ['route', 'replace', route, net]);
}

/** Undoes refuseUpstream (idempotent). */
export async function restoreRefusal(lab: LabInfo, provider: ProviderName, route: RefusalRoute, net: Cidr = INTERNET_NET): Promise<void> {
  await ipIn(providerNs(lab, provider), ['route', 'del', route, net], { allowFail: true });
}

/** The ruleset of randomLoss: every forwarded packet, both directions, is dropped with `percent` % probability. */
export function lossRuleset(percent: number): string {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100)
    throw new UplinkdError('usage', `loss must be an integer percent 0..100, not ${percent}`);
  return `table ip ${LOSS_TABLE} {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ${percent === 100 ? '' : `numgen random mod 100 < ${percent} `}counter drop comment "random loss ${percent}%"
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

/** nftables table (legacy iptables: chain) of the ICMP rate limit fault (on the internet host). */
export const RATE_LIMIT_TABLE = 'lab_ratelimit';

/**
 * Every target on the internet host limits ICMP echo requests to `perSecond` per source and
 * target (as public resolvers and providers' routers do), in a dynamic set keyed by
 * source . destination; requests over the limit are dropped without an answer. With `from`,
 * only sources in that network are limited (e.g. one provider's customers).
 */
export async function rateLimitIcmp(lab: LabInfo, perSecond: number, from?: Cidr): Promise<void> {
  if (!Number.isInteger(perSecond) || perSecond < 1) throw new UplinkdError('usage', `rate must be a positive integer, not ${perSecond}`);
  await clearRateLimit(lab);
  if (lab.firewall === 'iptables') {
    await replaceOwnChain(lab.ns.inet, rateLimitChain(perSecond, from));
    return;
  }
  await inNs(lab.ns.inet, 'nft', ['-f', '-'], {
    input: `table ip ${RATE_LIMIT_TABLE} {
  set per_source {
    type ipv4_addr . ipv4_addr
    size 65535
    flags dynamic,timeout
    timeout 1m
  }
  chain input {
    type filter hook input priority -10; policy accept;
    ${from ? `ip saddr ${from} ` : ''}icmp type echo-request update @per_source { ip saddr . ip daddr limit rate over ${perSecond}/second burst ${perSecond} packets } counter drop comment "icmp limit ${perSecond}/s per source"
  }
}
`,
  });
}

/**
 * The rate limit in legacy iptables: xt_hashlimit keyed by source and destination address
 * (iptables-extensions(8) `hashlimit`), dropping echo requests above `perSecond` (burst as many),
 * entries forgotten after a minute as in the nft set.
 */
export function rateLimitChain(perSecond: number, from?: Cidr): OwnChain {
  return {
    table: 'filter',
    hook: 'INPUT',
    chain: RATE_LIMIT_TABLE,
    rules: [
      `${from ? `-s ${from} ` : ''}-p icmp --icmp-type echo-request -m hashlimit --hashlimit-above ${perSecond}/sec --hashlimit-burst ${perSecond} ` +
        `--hashlimit-mode srcip,dstip --hashlimit-name ${RATE_LIMIT_TABLE} --hashlimit-htable-expire 60000 -m comment --comment "icmp limit ${perSecond}/s per source" -j DROP`,
    ],
  };
}

/** Undoes rateLimitIcmp (idempotent). */
export async function clearRateLimit(lab: LabInfo): Promise<void> {
  if (lab.firewall === 'iptables') await removeOwnChain(lab.ns.inet, { table: 'filter', hook: 'INPUT', chain: RATE_LIMIT_TABLE });
  else await inNs(lab.ns.inet, 'nft', ['delete', 'table', 'ip', RATE_LIMIT_TABLE], { allowFail: true });
}

/** Echo requests the rate limit dropped so far. */
export async function rateLimited(lab: LabInfo): Promise<number> {
  if (lab.firewall === 'iptables') return (await ownChainPackets(lab.ns.inet, { table: 'filter', chain: RATE_LIMIT_TABLE }))[0] ?? 0;
  const r = await inNs(lab.ns.inet, 'nft', ['list', 'table', 'ip', RATE_LIMIT_TABLE], { allowFail: true });
  return Number(/counter packets (\d+)/.exec(r.stdout)?.[1] ?? 0);
}

/** nftables table (legacy iptables: chain) of the silent-target fault (on the internet host). */
export const SILENT_TARGET_TABLE = 'lab_silent';

/** A probe target stops answering (ICMP echo to `address` dropped on the internet host); everything else works. */
export async function silenceTarget(lab: LabInfo, address: string): Promise<void> {
  await unsilenceTarget(lab);
  if (lab.firewall === 'iptables') {
    await replaceOwnChain(lab.ns.inet, { ...SILENT_CHAIN, rules: [`-d ${address} -p icmp --icmp-type echo-request -j DROP`] });
    return;
  }
  await inNs(lab.ns.inet, 'nft', ['-f', '-'], {
    input: `table ip ${SILENT_TARGET_TABLE} {
  chain input {
    type filter hook input priority -20; policy accept;
    ip daddr ${address} icmp type echo-request counter drop
  }
}
`,
  });
}

const SILENT_CHAIN = { table: 'filter', hook: 'INPUT', chain: SILENT_TARGET_TABLE } as const;

/** Undoes silenceTarget (idempotent). */
export async function unsilenceTarget(lab: LabInfo): Promise<void> {
  if (lab.firewall === 'iptables') await removeOwnChain(lab.ns.inet, SILENT_CHAIN);
  else await inNs(lab.ns.inet, 'nft', ['delete', 'table', 'ip', SILENT_TARGET_TABLE], { allowFail: true });
}

/**
 * A saturated upload's queue: a token bucket filter on the provider's backbone interface (the
 * customer's upload direction) holding up to `latencyMs` of packets at `rate` (tc-tbf(8)).
 * Probes through this provider wait in the same queue: a slow path, not a dead one.
 */
export async function uploadQueue(lab: LabInfo, provider: ProviderName, opts: { rate: string; latencyMs: number }): Promise<void> {
  await inNs(providerNs(lab, provider), 'tc', ['qdisc', 'replace', 'dev', PROVIDER_BACKBONE_IF, 'root', 'tbf', 'rate', opts.rate, 'burst', '16kb', 'latency', `${opts.latencyMs}ms`]);
}

/** Undoes uploadQueue (idempotent). */
export async function clearUploadQueue(lab: LabInfo, provider: ProviderName): Promise<void> {
  await inNs(providerNs(lab, provider), 'tc', ['qdisc', 'del', 'dev', PROVIDER_BACKBONE_IF, 'root'], { allowFail: true });
}
