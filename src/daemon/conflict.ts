// Drift restoration rate limit. When another program keeps deleting or changing an
// object uplinkd owns, restoring it at once every time makes the two managers
// ping-pong forever. Per object we count restorations in a sliding window; past the
// limit the object is left alone for a backoff that doubles while the fight goes on.
import type { Change } from '../model/types';

export interface ConflictPolicy {
  /** Restorations allowed inside `windowMs` before backing off. */
  limit: number;
  windowMs: number;
  /** First backoff; doubles on each further conflict, up to maxBackoffMs. */
  baseBackoffMs: number;
  maxBackoffMs: number;
}

export const CONFLICT_DEFAULTS: ConflictPolicy = { limit: 5, windowMs: 10_000, baseBackoffMs: 2_000, maxBackoffMs: 300_000 };

/** Whether a restoration may happen now; when not, until when (`retryAt`, epoch ms) and the backoff in ms. */
export type RestoreDecision =
  | { allow: true }
  /** `retryAt`: epoch ms; `escalated`: this call started a (longer) backoff, so the caller should warn once. */
  | { allow: false; retryAt: number; escalated: boolean; restorations: number; backoffMs: number };

interface ObjectState {
  /** What the object is, for status (e.g. the iproute2 command that adds it). */
  object: string;
  times: number[];
  backoffMs: number;
  /** Epoch ms until which restoration is held back; 0 when not backing off. */
  blockedUntil: number;
  /** A backoff happened and the window has not been quiet since: the next restoration backs off again. */
  probation: boolean;
}

export interface ConflictInfo {
  key: string;
  object: string;
  restorations: number;
  /** Epoch ms until which restoration is held back; absent when not backing off. */
  blockedUntil?: number;
  backoffMs: number;
}

/**
 * Per-object drift restoration limiter (keys are the objects' identities): allows up to `policy.limit` restorations
 * in a sliding `policy.windowMs`, then holds the object back for `baseBackoffMs`, doubling (to `maxBackoffMs`) while
 * the conflict continues. Times are epoch milliseconds, given by the caller (testable with a virtual clock).
 */
export class ConflictLimiter {
  private readonly objects = new Map<string, ObjectState>();

  constructor(private readonly policy: ConflictPolicy = CONFLICT_DEFAULTS) {}

  /**
   * Asks to restore the object `key` (its identity) at time `now` (epoch ms); records the restoration when
   * allowed. `object` describes it in active() (default: the key).
   */
  restore(key: string, now: number, object = key): RestoreDecision {
    const state = this.objects.get(key) ?? { object, times: [], backoffMs: 0, blockedUntil: 0, probation: false };
    this.objects.set(key, state);
    state.times = state.times.filter((t) => t > now - this.policy.windowMs);
    if (now < state.blockedUntil) {
      return { allow: false, retryAt: state.blockedUntil, escalated: false, restorations: state.times.length, backoffMs: state.backoffMs };
    }
    if (state.blockedUntil !== 0) {
      // The backoff ended: restore once and see whether the other program still fights.
      state.blockedUntil = 0;
      state.probation = true;
    } else {
      if (state.times.length === 0) {
        state.backoffMs = 0; // quiet for a whole window: forgive
        state.probation = false;
      }
      if (state.times.length >= this.policy.limit || state.probation) {
        state.backoffMs = state.backoffMs === 0 ? this.policy.baseBackoffMs : Math.min(state.backoffMs * 2, this.policy.maxBackoffMs);
        state.blockedUntil = now + state.backoffMs;
        return { allow: false, retryAt: state.blockedUntil, escalated: true, restorations: state.times.length, backoffMs: state.backoffMs };
      }
    }
    state.times.push(now);
    return { allow: true };
  }

  /** Objects restored inside the window or held back, for `status`. */
  active(now: number): ConflictInfo[] {
    const out: ConflictInfo[] = [];
    for (const [key, s] of this.objects) {
      const restorations = s.times.filter((t) => t > now - this.policy.windowMs).length;
      if (restorations === 0 && s.blockedUntil <= now) {
        this.objects.delete(key);
        continue;
      }
      out.push({ key, object: s.object, restorations, backoffMs: s.backoffMs, ...(s.blockedUntil > now ? { blockedUntil: s.blockedUntil } : {}) });
    }
    return out;
  }
}

/** Who probably fights over an object of this kind, for the conflict warning. */
export function conflictHint(kind: Change['kind'] | 'nft'): string {
  switch (kind) {
    case 'nft':
      return 'another program keeps removing or changing table ip uplinkd (a firewall service reloading its ruleset with nft flush ruleset?)';
    case 'rule':
      return 'another program keeps removing this rule (foreign-rule cleanup, e.g. systemd-networkd ManageForeignRoutingPolicyRules=yes?)';
    case 'route':
      return 'another program keeps removing or changing this route (e.g. systemd-networkd ManageForeignRoutes=yes, NetworkManager, or a DHCP-client hook flushing the table?)';
    case 'nexthop':
      return 'another program keeps removing or changing this nexthop (e.g. systemd-networkd ManageForeignNextHops=yes?)';
  }
}
