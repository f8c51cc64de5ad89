// Which uplink a change the kernel refused belongs to, so `uplinkd status` shows the refusal on that
// uplink's line instead of calling it ready and ok while its routes are missing.
import { UplinkdError } from '../errors';
import type { Change } from '../model/types';
import type { UplinkStatus } from '../plan/planner';

/** A change the kernel refused, as the apply step reports it (src/engine/cycle.ts). */
export interface RefusedChange {
  change: Change;
  error: Error;
}

/** An uplink as the daemon serves it: `refused` lists the kernel's reasons for refusing its changes. */
export type ServedUplink = UplinkStatus & { refused?: string[] };

/**
 * The kernel's reason in a few words: errno and the extended ACK text (NLMSGERR_ATTR_MSG,
 * include/uapi/linux/netlink.h), e.g. `EINVAL Nexthop has invalid gateway`; else the error's message.
 */
export function refusalText(error: Error): string {
  if (error instanceof UplinkdError && error.detail.errno !== undefined) {
    return error.detail.kernelMessage ? `${error.detail.errno} ${error.detail.kernelMessage}` : error.detail.errno;
  }
  return error.message;
}

/**
 * `uplinks` with the refusals of the last cycle (`failed`) attached to the uplink they belong to: a
 * route or rule by its table (the uplink's own table), a single nexthop by its device. Changes of no
 * one uplink (the balancing group, routes in the main table) are left out: they are in the events.
 * An uplink with refusals also says so in `reason` (the status line's WHY column): `...; refused: EINVAL ...`.
 * Distinct reasons, in the order of `failed`; uplinks without refusals are returned as they are.
 */
export function withRefusals(uplinks: readonly UplinkStatus[], failed: readonly RefusedChange[]): ServedUplink[] {
  return uplinks.map((u) => {
    const reasons = [...new Set(failed.filter((f) => belongsTo(f.change, u)).map((f) => refusalText(f.error)))];
    return reasons.length === 0 ? u : { ...u, refused: reasons, reason: `${u.reason}; refused: ${reasons.join(', ')}` };
  });
}

function belongsTo(change: Change, u: UplinkStatus): boolean {
  switch (change.kind) {
    case 'route':
      return change.route.table === u.table;
    case 'rule':
      return change.rule.table === u.table;
    case 'nexthop':
      return change.nexthop.group === undefined && change.nexthop.dev === u.interface;
  }
}
