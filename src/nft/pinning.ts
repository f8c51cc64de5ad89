// Flow pinning's table as the engine's cycle sees it (src/engine/cycle.ts): what the config wants,
// what the kernel has, the one change between them, and a status line. planPinning is pure.
import { hex32 } from '../model/text';
import type { Config } from '../config/types';
import { pinMarks } from './marks';
import { deletePinning, installPinning, readPinning, runNft, type NftRunner, type ObservedPinning } from './nft';
import { DELETE_SCRIPT, PIN_TABLE, renderPinning, type PinningRuleset } from './ruleset';

/** The one nftables change pinning may need: replace `table ip uplinkd` with the rendered ruleset, or delete it. */
export type PinningChange = { op: 'install'; ruleset: PinningRuleset } | { op: 'delete' };

/** Flow pinning's desired and observed `table ip uplinkd`, the change between them, and what to tell people. */
export interface PinningPlan {
  /** The table the config wants; undefined when pinning is disabled. */
  desired?: PinningRuleset;
  observed: ObservedPinning;
  change?: PinningChange;
  /** One line for `status`. */
  status: string;
  /** Pinning is wanted but cannot be had (nft missing or failing). */
  warning?: string;
}

function matches(desired: PinningRuleset, observed: ObservedPinning): boolean {
  return observed.kind === 'present' && observed.hash === desired.hash && observed.rules === desired.rules
    && observed.effect === desired.effect && observed.layout === desired.layout;
}

/**
 * Pure: compares the table the config wants (renderPinning(); none when pinning is disabled) with the observed one by
 * its content hash (the rules' comments), rule count, what the rules do (their statements, normalised) and layout (chains with their type, hook, priority and policy; other objects). Change `install` when it is absent or differs, `delete` when pinning is disabled but
 * the table is there, none when nft is unavailable (then `warning` says so, as pinning is wanted and cannot be had).
 */
export function planPinning(config: Config, observed: ObservedPinning): PinningPlan {
  const desired = renderPinning(config);
  if (!desired) {
    const leftover = observed.kind === 'present';
    return {
      observed,
      ...(leftover ? { change: { op: 'delete' } as const } : {}),
      status: `flow pinning: disabled in the configuration${leftover ? ` (table ${PIN_TABLE} is still there: uplinkd apply removes it)` : ''}`,
    };
  }
  if (observed.kind === 'unavailable') {
    return {
      desired,
      observed,
      status: `flow pinning: off: ${observed.reason}`,
      warning: `flow pinning is off: ${observed.reason}; established connections may change uplink (and break) when the balance changes. `
        + 'Install nftables, or set pinning: {enabled: false} to silence this (it also restores the unpinned resilient timers)',
    };
  }
  const marks = pinMarks(config).map((m) => `${m.uplink}=${hex32(m.mark)}`).join(' ');
  if (matches(desired, observed)) {
    return { desired, observed, status: `flow pinning: in place (table ${PIN_TABLE}; ${marks}, mask ${hex32(config.pinning!.markMask)})` };
  }
  return {
    desired,
    observed,
    change: { op: 'install', ruleset: desired },
    status: observed.kind === 'absent'
      ? `flow pinning: not in place (uplinkd apply installs table ${PIN_TABLE})`
      : `flow pinning: table ${PIN_TABLE} differs from the configuration (uplinkd apply replaces it)`,
  };
}

/** One line: `nft -f - <<< 'table ip uplinkd { ... }'` or the delete. `full` gives the whole script instead. */
export function formatPinningChange(change: PinningChange, full = false): string {
  if (change.op === 'delete') return full ? `nft -f - <<'EOF'\n${DELETE_SCRIPT}EOF` : `nft delete table ${PIN_TABLE}`;
  if (full) return `nft -f - <<'EOF'\n${change.ruleset.script}EOF`;
  return `nft -f - <<< 'table ${PIN_TABLE} { ... }' (${change.ruleset.rules} rules: ${change.ruleset.summary})`;
}

/**
 * Reads `table ip uplinkd` with `run` (default: the nft tool) and plans against it (planPinning()). nft missing or
 * failing is an `unavailable` observation, not an error.
 */
export async function observePinning(config: Config, run: NftRunner = runNft): Promise<PinningPlan> {
  return planPinning(config, await readPinning(run));
}

/**
 * Makes one change to `table ip uplinkd` with one `nft -f -` (install: the whole table in one
 * transaction; delete: only our table). Throws UplinkdError ('io': nft cannot run; 'kernel': nft refused).
 */
export async function applyPinningChange(change: PinningChange, run: NftRunner = runNft): Promise<void> {
  if (change.op === 'install') await installPinning(change.ruleset, run);
  else await deletePinning(run);
}

/** Applies the plan's change, if any, and returns it; throws as applyPinningChange. */
export async function applyPinning(plan: PinningPlan, run: NftRunner = runNft): Promise<PinningChange | undefined> {
  if (!plan.change) return undefined;
  await applyPinningChange(plan.change, run);
  return plan.change;
}

/** `uplinkd down`: delete the table when it is there (only then); nft missing: nothing to delete. */
export function teardownPinning(observed: ObservedPinning): PinningChange | undefined {
  return observed.kind === 'present' ? { op: 'delete' } : undefined;
}

/** What `nft -j list table ip uplinkd` reads after `change` succeeded (the hash every rule carries). */
export function observedAfter(change: PinningChange): ObservedPinning {
  return change.op === 'install'
    ? { kind: 'present', hash: change.ruleset.hash, rules: change.ruleset.rules, effect: change.ruleset.effect, layout: change.ruleset.layout }
    : { kind: 'absent' };
}

/** The table matches the config; undefined when pinning is disabled (metrics: uplinkd_pinning_in_place). */
export function pinningInPlace(plan: PinningPlan): boolean | undefined {
  return plan.desired === undefined ? undefined : plan.observed.kind === 'present' && plan.change === undefined;
}

/**
 * The identity of the table as wanted, for drift accounting beside objectIdentity (src/model/identity.ts):
 * `nft table ip uplinkd #<hash>`; the hash covers the whole script (src/nft/ruleset.ts).
 */
export function pinningIdentity(ruleset: PinningRuleset): string {
  return `nft table ${PIN_TABLE} #${ruleset.hash}`;
}
