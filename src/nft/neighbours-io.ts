// Reads other programs' mark rules from nftables and iptables for the warnings of
// neighbours.ts. Each source is optional: a missing tool or a failing read is skipped.
import { execFile } from 'node:child_process';
import type { Config } from '../config/types';
import { iptablesMarkUses, markNeighbourWarnings, nftMarkUses, ruleMarkUses, type MarkUse } from './neighbours';
import type { Rule } from '../model/types';
import { PIN_TABLE } from './ruleset';

function output(cmd: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

/** Foreign mark uses in the nftables ruleset (all tables but `ip uplinkd`) and in iptables (nft and legacy back ends). */
export async function readFirewallMarkUses(): Promise<MarkUse[]> {
  const [nft, ipt, legacy] = await Promise.all([
    output('nft', ['-j', 'list', 'ruleset']),
    output('iptables-save', []),
    output('iptables-legacy-save', []),
  ]);
  const uses: MarkUse[] = [];
  if (nft !== undefined) {
    try {
      uses.push(...nftMarkUses(JSON.parse(nft), PIN_TABLE));
    } catch {
      // not JSON (an old nft): nothing to report from it
    }
  }
  // iptables-nft rules are also nft tables (ip mangle, ...), read above as JSON; iptables-save
  // adds the legacy back end when iptables is the legacy variant.
  if (ipt !== undefined) uses.push(...iptablesMarkUses(ipt, 'iptables'));
  if (legacy !== undefined) uses.push(...iptablesMarkUses(legacy, 'iptables-legacy'));
  return uses;
}

/**
 * Warnings for firewall rules whose marks overlap pinning.mark_mask; empty when pinning is off. The
 * suggested mask also avoids the foreign fwmark rules among `rules` (the kernel's policy rules); without
 * them the suggestion says it weighed the firewall marks only. `uses`: the firewall's mark uses when the
 * caller started reading them earlier (readFirewallMarkUses), else they are read now.
 */
export async function firewallMarkWarnings(config: Config, rules?: readonly Rule[], uses?: Promise<MarkUse[]>): Promise<string[]> {
  if (!config.pinning?.enabled) return [];
  return markNeighbourWarnings(await (uses ?? readFirewallMarkUses()), config.pinning.markMask, config.uplinks.length, rules && ruleMarkUses(rules, config.protocol));
}

/**
 * `check`'s mark warnings: foreign fwmark rules among `rules` and firewall rules whose marks overlap
 * pinning.mark_mask, each with the one mask suggestion that avoids all of them together.
 */
export async function allMarkWarnings(config: Config, rules: readonly Rule[]): Promise<string[]> {
  if (!config.pinning?.enabled) return [];
  const firewall = await readFirewallMarkUses();
  const fwmarks = ruleMarkUses(rules, config.protocol);
  const { markMask } = config.pinning;
  const n = config.uplinks.length;
  return [...markNeighbourWarnings(fwmarks, markMask, n, firewall), ...markNeighbourWarnings(firewall, markMask, n, fwmarks)];
}
