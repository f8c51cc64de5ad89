// The lab set up for health monitoring (issue 4): a second probe target on the internet host,
// the daemon's config with `monitor:` sections, and read-only views the health tests, the demo
// and the benchmarks share: which uplinks the default group holds, the daemon's verdicts,
// probe counters on the provider side.
import { promises as fs } from 'node:fs';
import type { DaemonStatus } from '../src/daemon/daemon';
import { UplinkdError } from '../src/errors';
import { queryDaemon } from '../src/daemon/control-client';
import type { HealthVerdict } from '../src/model/facts';
import type { LogLevel } from '../src/log';
import type { Ipv4 } from '../src/model/types';
import { renderLabConfig, type LabConfigOptions, type LabMonitor } from './config';
import { leaseGlob } from './dhcp';
import { startDaemon, type RunningDaemon } from './daemon';
import { inNs, ipIn, ipJson, waitFor } from './exec';
import { ownChainPackets, replaceOwnChain, type OwnChain } from './firewall';
import type { ProviderName } from './faults';
import { PROVIDER_CUSTOMER_IF, type LabInfo } from './topology';
import { flowsPerUplink, tcpTally, ECHO_PORT } from './traffic';

/** A second address on the internet host's loopback, routed by both providers (their default points at it). */
export const SECOND_TARGET: Ipv4 = '192.0.2.53';
/** The balanced default's nexthop group id (config tableBase, the lab's default). */
export const DEFAULT_GROUP = 1000;
/** The nftables table of the probe counters in a provider namespace. */
const COUNT_TABLE = 'lab_probes';

/** Adds SECOND_TARGET to the internet host (idempotent). */
export async function addSecondTarget(lab: LabInfo): Promise<void> {
  await ipIn(lab.ns.inet, ['addr', 'replace', `${SECOND_TARGET}/32`, 'dev', 'lo']);
}

/** The monitor's targets in the lab: the internet host and the second address on it. */
export function labTargets(lab: LabInfo): string[] {
  return [lab.internetHost, SECOND_TARGET];
}

export interface HealthConfigOptions extends Pick<LabConfigOptions, 'default' | 'weights' | 'tiers'> {
  /** Uplinks probed; default both. */
  monitored?: ProviderName[];
  /** Probe targets; default labTargets(lab). */
  targets?: string[];
  /** Monitor keys other than targets (default: none, the documented defaults). */
  settings?: LabMonitor['settings'];
  hooksDir?: string;
}

/** The daemon's config for health work: the lab config with `monitor:` sections, its socket, optionally a hooks dir. */
export function healthDaemonConfig(lab: LabInfo, socket: string, opts: HealthConfigOptions = {}): string {
  const globs = [leaseGlob('dhclient', lab.stateDir), leaseGlob('udhcpc', lab.stateDir), leaseGlob('dhcpcd', lab.stateDir)];
  const monitor: LabMonitor = { targets: opts.targets ?? labTargets(lab), ...(opts.settings && { settings: opts.settings }) };
  const text = renderLabConfig(
    { ...lab, leaseGlobs: globs },
    {
      ...(opts.default && { default: opts.default }),
      ...(opts.weights && { weights: opts.weights }),
      ...(opts.tiers && { tiers: opts.tiers }),
      monitor: Object.fromEntries((opts.monitored ?? ['isp1', 'isp2']).map((n) => [n, monitor])),
      controlSocket: socket,
      ...(opts.hooksDir && { hooksDir: opts.hooksDir }),
    },
  );
  return `${text}daemon:\n  debounce: 5ms\n  resync_interval: 5s\n`;
}

/** Names of the uplinks in the default nexthop group now, in config order ([] when there is no group). */
export async function defaultMembers(lab: LabInfo): Promise<string[]> {
  const nh = await ipJson<{ id: number; group?: { id: number }[] }>(lab.ns.router, ['nexthop', 'show', 'id', String(DEFAULT_GROUP)]).catch(() => []);
  const ids = new Set((nh[0]?.group ?? []).map((m) => m.id));
  // Uplink i's nexthop id is its table, 1001 + i in the lab's config (LAB_TABLES).
  return lab.uplinks.filter((_, i) => ids.has(DEFAULT_GROUP + 1 + i)).map((u) => u.name);
}

/**
 * Waits (polling every 20 ms, up to `timeoutMs` milliseconds) until the router's balance group holds exactly the
 * uplinks `names`, in lab order; UplinkdError('lab') saying what it holds otherwise.
 */
export async function waitForDefault(lab: LabInfo, names: string[], timeoutMs: number): Promise<void> {
  const want = names.join(',');
  let last: string[] = [];
  await waitFor('the default group', async () => {
    last = await defaultMembers(lab);
    return last.join(',') === want ? true : undefined;
  }, timeoutMs, 20).catch(() => {
    throw new UplinkdError('lab', `the default group did not hold [${want}] within ${timeoutMs} ms (it holds [${last.join(',')}])`);
  });
}

/** The daemon's `status` answer over its control socket, with the status text. */
export type DaemonView = DaemonStatus & { text: string };

/** Asks the daemon listening on control socket `socket` for its status. */
export async function daemonStatus(socket: string): Promise<DaemonView> {
  return (await queryDaemon(socket, { cmd: 'status' })) as DaemonView;
}

/** The daemon's current health verdict for `uplink`; undefined when it is not monitored. */
export async function verdictOf(socket: string, uplink: string): Promise<HealthVerdict | undefined> {
  return (await daemonStatus(socket)).facts.health[uplink];
}

/**
 * Waits (polling every 50 ms, up to `timeoutMs` milliseconds) until the daemon judges `uplink` to be `state`;
 * UplinkdError('lab') saying the last verdict otherwise.
 */
export async function waitForVerdict(socket: string, uplink: string, state: HealthVerdict, timeoutMs: number): Promise<void> {
  let last: HealthVerdict | undefined;
  await waitFor(`${uplink} to be ${state}`, async () => {
    last = await verdictOf(socket, uplink);
    return last === state ? true : undefined;
  }, timeoutMs, 50).catch(() => {
    throw new UplinkdError('lab', `${uplink} was not ${state} within ${timeoutMs} ms (it is ${last ?? 'not reported'})`);
  });
}

/**
 * Writes `configText` to `configFile`, starts `uplinkd run` in the lab's router with it and waits
 * until both lab uplinks' health verdicts are `up` (each within `timeoutMs`, milliseconds).
 * Throws UplinkdError('lab') when the daemon does not start or a verdict does not come.
 */
export async function startMonitoredDaemon(lab: LabInfo, socket: string, configFile: string, configText: string, timeoutMs: number, level: LogLevel = 'info'): Promise<RunningDaemon> {
  await fs.writeFile(configFile, configText);
  const daemon = await startDaemon(lab.ns.router, configFile, undefined, level);
  await waitForVerdict(socket, 'isp1', 'up', timeoutMs);
  await waitForVerdict(socket, 'isp2', 'up', timeoutMs);
  return daemon;
}

/** LAN flows to the internet host per uplink (tcp-echo must run on the internet host). */
export async function lanFlows(lab: LabInfo, count: number, port = ECHO_PORT): Promise<{ perUplink: Record<string, number>; failed: number }> {
  const t = await tcpTally(lab.ns.lan, lab.internetHost, port, { count, concurrency: 16, timeoutMs: 2000 });
  return { perUplink: flowsPerUplink(t, lab.uplinks), failed: t.failed };
}

/**
 * Counts, in the provider's namespace, the health probes of the uplink with address `source`:
 * echo requests from it to the targets as they arrive from the router (prerouting, before any
 * route, a blackhole included, can drop them) and echo replies to it as they leave towards the router.
 */
export async function countProbes(lab: LabInfo, provider: ProviderName, source: Ipv4): Promise<void> {
  const ns = lab.ns[provider];
  await inNs(ns, 'nft', ['delete', 'table', 'ip', COUNT_TABLE], { allowFail: true });
  const targets = labTargets(lab).join(', ');
  await inNs(ns, 'nft', ['-f', '-'], {
    input: `table ip ${COUNT_TABLE} {
  counter requests {}
  counter replies {}
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    iifname "${PROVIDER_CUSTOMER_IF}" ip saddr ${source} ip daddr { ${targets} } icmp type echo-request counter name requests
  }
  chain post {
    type filter hook postrouting priority 300; policy accept;
    oifname "${PROVIDER_CUSTOMER_IF}" ip daddr ${source} ip saddr { ${targets} } icmp type echo-reply counter name replies
  }
}
`,
  });
}

export interface ProbeCount {
  requests: number;
  replies: number;
  /** IP bytes of those packets. */
  requestBytes: number;
  replyBytes: number;
}

/** The counters of countProbes (zero when they are not installed). */
export async function probeCount(lab: LabInfo, provider: ProviderName): Promise<ProbeCount> {
  const r = await inNs(lab.ns[provider], 'nft', ['-j', 'list', 'counters', 'table', 'ip', COUNT_TABLE], { allowFail: true });
  const out: ProbeCount = { requests: 0, replies: 0, requestBytes: 0, replyBytes: 0 };
  if (r.code !== 0) return out;
  const items = (JSON.parse(r.stdout) as { nftables: { counter?: { name: string; packets: number; bytes: number } }[] }).nftables;
  for (const { counter: c } of items) {
    if (c?.name === 'requests') Object.assign(out, { requests: c.packets, requestBytes: c.bytes });
    if (c?.name === 'replies') Object.assign(out, { replies: c.packets, replyBytes: c.bytes });
  }
  return out;
}

/** Our chain of probe counters on the internet host (legacy iptables; mangle INPUT sees every arrival, before any filter). */
const TARGET_COUNT_CHAIN = { table: 'mangle', hook: 'INPUT', chain: 'lab_target_probes' } as const;

/** One counting rule per (source, target) pair, sources outer: echo requests arriving at the target. */
export function targetCountChain(sources: readonly Ipv4[], targets: readonly string[]): OwnChain {
  return { ...TARGET_COUNT_CHAIN, rules: sources.flatMap((s) => targets.map((t) => `-s ${s} -d ${t} -p icmp --icmp-type echo-request`)) };
}

/**
 * Counts, at the targets themselves (the internet host's input), the echo requests each uplink
 * address in `sources` sends to each of labTargets(lab). Legacy iptables only (the full-kernel
 * guest); on nftables labs use countProbes at the provider. Restarts the counters from zero.
 * Throws UplinkdError('lab') on an nftables lab.
 */
export async function countProbesAtTargets(lab: LabInfo, sources: readonly Ipv4[]): Promise<void> {
  if (lab.firewall !== 'iptables') throw new UplinkdError('lab', 'countProbesAtTargets needs the iptables lab (the full-kernel guest); use countProbes on nftables');
  await replaceOwnChain(lab.ns.inet, targetCountChain(sources, labTargets(lab)));
}

/** The counters of countProbesAtTargets: requests per `source>target` key (empty when not installed). */
export async function probesAtTargets(lab: LabInfo, sources: readonly Ipv4[]): Promise<Record<string, number>> {
  const packets = await ownChainPackets(lab.ns.inet, TARGET_COUNT_CHAIN);
  const keys = sources.flatMap((s) => labTargets(lab).map((t) => `${s}>${t}`));
  return Object.fromEntries(packets.length === keys.length ? keys.map((k, i) => [k, packets[i]]) : []);
}
