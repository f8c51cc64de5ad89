// Policies in the daemon's status, page and metrics (docs/policies.md, "Status").
import type { PolicyStatus } from '../plan/policies';
import { formatRule } from '../model/text';

/** A policy as the daemon reports it: the uplink its new connections use now, why, and its rules as `ip rule` text. */
export interface ServedPolicy {
  name: string;
  priority: number;
  uplink?: string;
  action: PolicyStatus['action'];
  reason: string;
  rules: string[];
}

/**
 * Policy statuses as the control socket and HTTP endpoint serve them: plain JSON, rules as `ip rule` text (formatRule()).
 */
export function servedPolicies(policies: readonly PolicyStatus[]): ServedPolicy[] {
  return policies.map((p) => ({
    name: p.name, priority: p.priority, ...(p.uplink !== undefined && { uplink: p.uplink }), action: p.action, reason: p.reason,
    rules: p.rules.map(formatRule),
  }));
}

/** `status` text lines: "policy NAME: UPLINK (why)". */
export function policyTextLines(policies: readonly ServedPolicy[] | undefined): string[] {
  return (policies ?? []).map((p) => `policy ${p.name}: ${p.uplink ?? p.action} (${p.reason})`);
}

/**
 * Prometheus samples: uplinkd_policy_uplink{policy, uplink} is 1 for the uplink the policy uses now, 0 for the
 * others it lists; uplinkd_policy_action{policy, action} is 1 for uplink|unreachable|balanced.
 */
export function policySamples(policies: readonly ServedPolicy[] | undefined, uplinks: readonly string[]): {
  uplink: { labels: Record<string, string>; value: number }[]; action: { labels: Record<string, string>; value: number }[];
} {
  const list = policies ?? [];
  return {
    uplink: list.flatMap((p) => uplinks.map((u) => ({ labels: { policy: p.name, uplink: u }, value: p.uplink === u ? 1 : 0 }))),
    action: list.flatMap((p) => (['uplink', 'unreachable', 'balanced'] as const).map((a) => ({ labels: { policy: p.name, action: a }, value: p.action === a ? 1 : 0 }))),
  };
}
