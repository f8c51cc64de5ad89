// The lab's own packet filters (a provider's source filter, the router's masquerade) for kernels
// with and without nftables' ip family. Debian's user-mode Linux kernel (the full-kernel guest,
// docs/guest-lab.md) builds nf_tables with the bridge family only, so there the lab uses legacy
// iptables (package iptables, `iptables-legacy-restore`), which that kernel has as modules.
import { UplinkdError } from '../src/errors';
import type { Cidr } from '../src/model/types';
import { inNs } from './exec';

/** Which filter the lab's namespaces get: nftables (ip family) or legacy iptables. */
export type LabFirewall = 'nft' | 'iptables';

/**
 * 'nft' when the kernel accepts a table of nftables' ip family in namespace `ns` (tried with an
 * add and a delete in one transaction), else 'iptables'. A missing nft program counts as absent.
 */
export async function labFirewall(ns: string): Promise<LabFirewall> {
  const r = await inNs(ns, 'nft', ['-f', '-'], { input: 'add table ip lab_probe\ndelete table ip lab_probe\n', allowFail: true })
    .catch(() => ({ code: 1 }));
  return r.code === 0 ? 'nft' : 'iptables';
}

/** One rule of the lab: a customer source filter (provider) or a LAN masquerade (router). */
export type LabRule =
  | { kind: 'source-filter'; iif: string; allowed: Cidr; comment: string }
  | { kind: 'masquerade'; from: Cidr; oifs: string[] };

/** The rules as an nftables ruleset (tables lab_isp and lab_nat), as the host-kernel lab has always used. */
export function nftRuleset(rules: readonly LabRule[]): string {
  const out: string[] = [];
  for (const r of rules) {
    if (r.kind === 'source-filter')
      out.push(`table ip lab_isp {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "${r.iif}" ip saddr != ${r.allowed} counter drop comment "${r.comment}"
  }
}
`);
    else
      out.push(`table ip lab_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
${r.oifs.map((i) => `    ip saddr ${r.from} oifname "${i}" masquerade`).join('\n')}
  }
}
`);
  }
  return out.join('');
}

/** The same rules for `iptables-legacy-restore` (it replaces the filter and nat tables it names). */
export function iptablesRestore(rules: readonly LabRule[]): string {
  const filter = rules.filter((r) => r.kind === 'source-filter').map((r) => `-A FORWARD -i ${r.iif} ! -s ${r.allowed} -m comment --comment "${r.comment}" -j DROP`);
  const nat = rules.flatMap((r) => (r.kind === 'masquerade' ? r.oifs.map((o) => `-A POSTROUTING -s ${r.from} -o ${o} -j MASQUERADE`) : []));
  // A masquerading router drops what conntrack calls INVALID (as OpenWrt's firewall does): a reply that lost its
  // NAT mapping under loss or a deep queue would otherwise reach the router's own stack, which answers it with a RST.
  if (nat.length > 0) filter.push('-A INPUT -m conntrack --ctstate INVALID -j DROP', '-A FORWARD -m conntrack --ctstate INVALID -j DROP');
  const out: string[] = [];
  if (filter.length > 0) out.push('*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...filter, 'COMMIT');
  if (nat.length > 0) out.push('*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ...nat, 'COMMIT');
  return out.join('\n') + '\n';
}

/** Installs the rules in namespace `ns` with the given firewall (one program run). */
export async function installRules(ns: string, firewall: LabFirewall, rules: readonly LabRule[]): Promise<void> {
  if (rules.length === 0) return;
  if (firewall === 'nft') await inNs(ns, 'nft', ['-f', '-'], { input: nftRuleset(rules) });
  else if (firewall === 'iptables') await inNs(ns, 'iptables-legacy-restore', [], { input: iptablesRestore(rules) });
  else throw new UplinkdError('lab', `unknown lab firewall ${String(firewall)}`);
}

/**
 * A chain of the lab's own in legacy iptables (for faults and counters on kernels without
 * nftables' ip family): `chain` in `table`, jumped to first from the built-in chain `hook`, holding
 * `rules` (iptables rule specs without `-A chain`). Removing it touches nothing else in the table.
 */
export interface OwnChain {
  table: 'filter' | 'mangle' | 'raw';
  hook: 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';
  chain: string;
  rules: string[];
}

/** `iptables-legacy-restore --noflush` text adding the chain (iptables-restore(8); the chain must not exist yet). */
export function ownChainRestore(c: OwnChain): string {
  return [`*${c.table}`, `:${c.chain} - [0:0]`, `-I ${c.hook} -j ${c.chain}`, ...c.rules.map((r) => `-A ${c.chain} ${r}`), 'COMMIT', ''].join('\n');
}

/** `iptables-legacy-restore --noflush` text removing the chain: the jump, its rules, the chain itself. */
export function ownChainRemoval(c: Pick<OwnChain, 'table' | 'hook' | 'chain'>): string {
  return [`*${c.table}`, `-D ${c.hook} -j ${c.chain}`, `-F ${c.chain}`, `-X ${c.chain}`, 'COMMIT', ''].join('\n');
}

/** Replaces our chain in namespace `ns` (removes an earlier copy first: a re-declared chain would get a second jump). */
export async function replaceOwnChain(ns: string, c: OwnChain): Promise<void> {
  await removeOwnChain(ns, c);
  await inNs(ns, 'iptables-legacy-restore', ['--noflush'], { input: ownChainRestore(c) });
}

/** Removes our chain from namespace `ns` (idempotent: a missing chain fails the whole restore, which changes nothing). */
export async function removeOwnChain(ns: string, c: Pick<OwnChain, 'table' | 'hook' | 'chain'>): Promise<void> {
  await inNs(ns, 'iptables-legacy-restore', ['--noflush'], { input: ownChainRemoval(c), allowFail: true });
}

/**
 * Packet counters of each rule of our chain, in rule order (iptables -L -v -x: exact numbers);
 * [] when the chain does not exist.
 */
export async function ownChainPackets(ns: string, c: Pick<OwnChain, 'table' | 'chain'>): Promise<number[]> {
  const r = await inNs(ns, 'iptables-legacy', ['-t', c.table, '-L', c.chain, '-n', '-v', '-x'], { allowFail: true });
  return r.code === 0 ? parseChainPackets(r.stdout) : [];
}

/** The `pkts` column of `iptables -L CHAIN -n -v -x` output, one number per rule. */
export function parseChainPackets(listing: string): number[] {
  return listing
    .split('\n')
    .slice(2) // "Chain X (1 references)" and the column header
    .map((l) => /^\s*(\d+)\s+\d+\s/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}
