// Policy rules of other programs that use mark bits of flow pinning's mask: warnings for plan.
import type { Config } from '../config/types';
import type { KernelState } from '../model/types';
import { markNeighbourWarnings, ruleMarkUses } from '../nft/neighbours';

/** One warning per foreign `fwmark` rule that touches pinning.mark_mask (docs/pinning.md); empty when pinning is off. */
export function fwmarkRuleWarnings(config: Config, kernel: KernelState): string[] {
  if (!config.pinning?.enabled) return [];
  return markNeighbourWarnings(ruleMarkUses(kernel.rules, config.protocol), config.pinning.markMask, config.uplinks.length);
}
