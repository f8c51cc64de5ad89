// Prometheus text exposition format 0.0.4 of the daemon's status (GET /metrics). Pure.
// A value that is not known (no RTT yet, pinning not checked) is left out, never NaN.
import { policySamples } from './policy-status';
import type { HealthVerdict } from '../model/facts';
import type { UplinkState } from '../plan/planner';
import type { ServedStatus } from './http';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Every planner state, so each uplink gets one series per state (a Record keeps the list complete). */
const UPLINK_STATES: Record<UplinkState, true> = {
  ready: true, waiting: true, 'link-down': true, 'no-address': true, 'no-gateway': true, unhealthy: true,
};
const HEALTH_STATES: Record<HealthVerdict, true> = { up: true, degraded: true, down: true, unknown: true };

type Labels = Record<string, string>;
interface Sample { labels: Labels; value: number | undefined }
interface Family { name: string; help: string; type: 'gauge' | 'counter'; samples: Sample[] }

/** Label value escaping of the text format: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escaping: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatSample(name: string, { labels, value }: Sample): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return `${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${value}`;
}

/** Families without a known value are left out entirely (no HELP/TYPE for nothing). */
export function renderFamilies(families: Family[]): string {
  const lines: string[] = [];
  for (const f of families) {
    const samples = f.samples.filter((s): s is Sample & { value: number } => s.value !== undefined && Number.isFinite(s.value));
    if (samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of samples) lines.push(formatSample(f.name, s));
  }
  return lines.map((l) => `${l}\n`).join('');
}

const flag = (b: boolean): number => (b ? 1 : 0);
/** Milliseconds (or percent) to a unit fraction, rounded so float noise does not show. */
const scaled = (value: number | null | undefined, divisor: number): number | undefined =>
  value === null || value === undefined ? undefined : Math.round((value / divisor) * 1e6) / 1e6;

/** The whole /metrics body for one status taken at `now` (epoch ms). */
export function renderMetrics(s: ServedStatus, info: { version: string; now: number }): string {
  const gauge = (name: string, help: string, samples: Sample[]): Family => ({ name, help, type: 'gauge', samples });
  const counter = (name: string, help: string, samples: Sample[]): Family => ({ name, help, type: 'counter', samples });
  const one = (value: number | undefined): Sample[] => [{ labels: {}, value }];
  const perUplink = (value: (u: ServedStatus['uplinks'][number]) => number): Sample[] =>
    s.uplinks.map((u) => ({ labels: { uplink: u.name }, value: value(u) }));
  const health = Object.entries(s.health).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const perHealth = (value: (h: ServedStatus['health'][string]) => number | undefined): Sample[] =>
    health.map(([uplink, h]) => ({ labels: { uplink }, value: value(h) }));
  const policies = policySamples(s.policies, s.uplinks.map((u) => u.name));
  const startedAt = Date.parse(s.startedAt);
  const lastCycle = s.lastCycle ? Date.parse(s.lastCycle.at) : undefined;

  return renderFamilies([
    gauge('uplinkd_build_info', 'uplinkd version; always 1', [{ labels: { version: info.version }, value: 1 }]),
    gauge('uplinkd_start_time_seconds', 'When the daemon started, seconds since the epoch', one(Number.isNaN(startedAt) ? undefined : startedAt / 1000)),
    counter('uplinkd_cycles_total', 'Cycles run (read the kernel, plan, diff, apply)', one(s.cycles)),
    counter('uplinkd_changes_applied_total', 'Kernel changes applied since start', one(s.totals?.applied)),
    counter('uplinkd_changes_failed_total', 'Kernel changes that failed since start', one(s.totals?.failed)),
    gauge('uplinkd_last_cycle_timestamp_seconds', 'When the last cycle ended, seconds since the epoch', one(lastCycle === undefined ? undefined : lastCycle / 1000)),
    gauge('uplinkd_in_sync', '1 when the last cycle applied everything it wanted (nothing failed or held back)', one(flag(s.inSync))),
    gauge('uplinkd_conflicts', 'Owned objects held back because another program keeps changing them', one(s.conflicts.filter((c) => c.retryAt !== undefined).length)),
    gauge('uplinkd_pinning_in_place', '1 when flow pinning\'s nftables table matched the configuration at the last check (start, reloads, periodic resyncs, nftables notifications about it); absent when pinning is disabled or not checked yet',
      one(s.pinningInPlace === undefined ? undefined : flag(s.pinningInPlace))),
    gauge('uplinkd_uplink_up', '1 when the uplink is ready (interface up, address, gateway, health not down)',
      s.uplinks.map((u) => ({ labels: { uplink: u.name, interface: u.interface }, value: flag(u.state === 'ready') }))),
    gauge('uplinkd_uplink_state', 'The uplink\'s state: 1 for the current one, 0 for the others',
      s.uplinks.flatMap((u) => Object.keys(UPLINK_STATES).map((state) => ({ labels: { uplink: u.name, state }, value: flag(u.state === state) })))),
    gauge('uplinkd_uplink_in_default', '1 when the uplink carries the default route', perUplink((u) => flag(u.inDefault))),
    gauge('uplinkd_last_resort', '1 when every uplink is judged down by its health checks and the default keeps them anyway (last resort)',
      one(flag(s.uplinks.some((u) => u.lastResort === true)))),
    gauge('uplinkd_uplink_weight', 'The uplink\'s weight in the balance group (after a degraded reduction)', perUplink((u) => u.weight)),
    gauge('uplinkd_health_state', 'The monitored uplink\'s health verdict: 1 for the current one, 0 for the others',
      health.flatMap(([uplink, h]) => Object.keys(HEALTH_STATES).map((state) => ({ labels: { uplink, state }, value: flag(h.state === state) })))),
    gauge('uplinkd_health_rtt_seconds', 'Mean probe round-trip time in the window', perHealth((h) => scaled(h.rttMs, 1000))),
    gauge('uplinkd_health_jitter_seconds', 'Mean difference of consecutive round-trip times per target', perHealth((h) => scaled(h.jitterMs, 1000))),
    gauge('uplinkd_health_loss_ratio', 'Lost probes in the window, 0 to 1', perHealth((h) => scaled(h.lossPct, 100))),
    gauge('uplinkd_policy_uplink', 'Per policy: 1 for the uplink its new connections use now, 0 for the others', policies.uplink),
    gauge('uplinkd_policy_action', 'Per policy: 1 for what it does now: uplink, unreachable (strict, none usable) or balanced (none usable)', policies.action),
    gauge('uplinkd_health_state_seconds', 'Time in the current health state', perHealth((h) => Math.max(0, Math.round(info.now - h.since)) / 1000)),
  ]);
}
