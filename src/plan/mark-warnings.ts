// Policy rules of other programs that use mark bits of flow pinning's mask: warnings for plan.
import type { Config } from '../config/types';
import type { KernelState } from '../model/types';
import { markNeighbourWarnings, ruleMarkUses, type MarkUse } from '../nft/neighbours';

/**
 * One warning per foreign `fwmark` rule that touches pinning.mark_mask (docs/pinning.md); empty when pinning is off.
 * The suggested mask also avoids `firewall`, the nftables/iptables mark uses when they were read (neighbours-io.ts);
 * without them the suggestion says it weighed these alone.
 */
export function fwmarkRuleWarnings(config: Config, kernel: KernelState, firewall?: readonly MarkUse[]): string[] {
  if (!config.pinning?.enabled) return [];
  return markNeighbourWarnings(ruleMarkUses(kernel.rules, config.protocol), config.pinning.markMask, config.uplinks.length, firewall);
}
