// The nftables table that pins connections to uplinks (docs/pinning.md), rendered from the
// config alone: interfaces and marks, never addresses, so it changes only when the config does.
//
//   prerouting (mangle): a connection arriving on an uplink is pinned to it (replies to
//     port-forwards and to the router's own services leave where the request came in);
//     packets arriving from inside (LAN, local networks) of a pinned connection get the
//     uplink's mark, so the `fwmark` rule routes them through the uplink's table.
//   output (route, mangle): the same for the router's own packets (a changed mark re-routes).
//   postrouting (mangle): a connection leaving through an uplink unpinned is pinned to it.
// Packets arriving on an uplink are never marked: they are going inside, and the main table
// knows inside networks (VPNs, containers) that uplink tables do not.
//
// Every rule's comment ends with `#<hash>` of the whole table; reading the table back compares that hash, what
// each rule does (its statements as nft reads them back, normalised, whatever its comment says: rule-effect.ts)
// and the table's layout (its chains with their type, hook, priority and policy, and any other object), so it
// tells whether it is exactly what this config wants (readPinning in nft.ts).
import { hex32 } from '../model/text';
import { createHash } from 'node:crypto';
import type { Config } from '../config/types';
import { LastResult } from '../model/memo';
import { pinMarks, type PinMark } from './marks';
import { natRules } from './nat';
import { cgroup2Root, execCgroups, type ExecCgroup } from './exec';
import { rulesEffectDigest, writtenRuleEffect } from './rule-effect';

export const PIN_TABLE = 'ip uplinkd';
export const PIN_CHAINS = ['prerouting', 'output', 'postrouting'] as const;
/** The source NAT chain (src/nft/nat.ts), after the pinning chains in the table. */
const NAT_CHAIN = 'nat_postrouting';

export interface PinningRuleset {
  /** The table definition (`table ip uplinkd { ... }`). */
  table: string;
  /** What `nft -f -` runs: replaces the table in one transaction (other tables untouched). */
  script: string;
  /** 16 hex digits of sha256 over the table without the hashes. */
  hash: string;
  /** Rules in the table. */
  rules: number;
  /** What the rules do, per chain in order (rulesEffectDigest in rule-effect.ts): a rule edited by hand that kept its comment differs here. */
  effect: string;
  /** Its chains as pinningLayout() writes them: a chain's policy or hook changed by someone else shows here. */
  layout: string;
  /** The exec cgroups the table refers to: they must exist before nft loads it. */
  cgroups: ExecCgroup[];
  /** One line for plan/apply output. */
  summary: string;
}

/** One object of the table other than a rule, as `nft -j list` (libnftables-json(5)) gives it: `chain`, `set`, `map`... */
export interface NftObject {
  kind: string;
  name?: string;
  /** A base chain's type, hook, priority (a number: nft(8) standard priority names resolved) and policy. */
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}

/**
 * The canonical text of a table's objects other than its rules (order-free): `chain output route output -150 accept`
 * per chain (`-` for what a regular chain lacks), `set NAME` and the like for anything else.
 */
export function pinningLayout(objects: readonly NftObject[]): string {
  const text = (o: NftObject) => (o.kind === 'chain'
    ? `chain ${o.name ?? '-'} ${o.type ?? '-'} ${o.hook ?? '-'} ${o.prio ?? '-'} ${o.policy ?? '-'}`
    : `${o.kind} ${o.name ?? '-'}`);
  return objects.map(text).sort().join('; ');
}

/** nft(8) standard priority names of family ip used in the table, as numbers (as `nft -j list` prints them). */
const PRIORITY = { mangle: -150, srcnat: 100 } as const;

/** The hash suffix of a rule comment, or undefined. */
export function commentHash(comment: string | undefined): string | undefined {
  return comment === undefined ? undefined : /#([0-9a-f]{16})$/.exec(comment)?.[1];
}

/**
 * uplinkd's table for `config` (pinning and per-uplink NAT), or undefined when neither is wanted. `cgroupRoot`: the
 * cgroup v2 mount point for `exec` (read from /proc/self/mountinfo when not given; only when exec is configured).
 * The result is frozen and shared: the daemon renders the table twice per cycle from a config that rarely changes,
 * so a call whose marks, exec cgroups, NAT rules and mask are those of the previous call returns the previous result.
 */
export function renderPinning(config: Config, cgroupRoot?: string): PinningRuleset | undefined {
  // In uplink name order: an uplink's rules of one kind never match the same packet as another's (each names its
  // own interface, mark or cgroup), so their order is free, and the table does not follow the order of the file.
  const marks = pinMarks(config).sort(byUplink);
  const cgroups = (config.exec ? execCgroups(config, cgroupRoot ?? cgroup2Root()) : []).sort(byUplink);
  // exec'd commands: their source address was chosen before the mark re-routed them (src/nft/exec.ts).
  const nat = [
    ...cgroups.map((c) => ({ uplink: c.uplink, text: `meta mark & ${hex32(config.pinning!.markMask)} == ${hex32(c.mark)} oifname "${c.interface}" masquerade` })),
    ...natRules(config).sort(byUplink),
  ];
  if ((marks.length === 0 || !config.pinning) && nat.length === 0) return undefined;
  const markMask = config.pinning?.markMask ?? 0;
  // The key holds everything build() reads.
  return last.get(JSON.stringify([marks, cgroups, nat, markMask]), () => {
    const r = build(marks, cgroups, nat, markMask);
    r.cgroups.forEach((c) => Object.freeze(c));
    Object.freeze(r.cgroups);
    return Object.freeze(r);
  });
}

const last = new LastResult<string, PinningRuleset>();

/** Orders by uplink name (UTF-16 code units, as the default sort: independent of the locale). */
function byUplink(a: { uplink: string }, b: { uplink: string }): number {
  return a.uplink < b.uplink ? -1 : a.uplink > b.uplink ? 1 : 0;
}

function build(marks: PinMark[], cgroups: ExecCgroup[], nat: { uplink: string; text: string }[], markMask: number): PinningRuleset {
  const mask = hex32(markMask);
  const keep = hex32(~markMask);
  // Anonymous sets, sorted so the text (and so the hash) does not follow the config's order. Anonymous rather than
  // named: the kernel refuses to change the elements of a set bound to a rule, so the sets change only with their
  // rules, whose hashes and count readPinning compares (a named set's elements could change unnoticed).
  const uplinkIfs = `{ ${marks.map((m) => `"${m.interface}"`).sort().join(', ')} }`;
  const uplinkMarks = `{ ${marks.map((m) => m.mark).sort((a, b) => a - b).map(hex32).join(', ')} }`;
  const pin = (m: string): string => `ct mark set ct mark & ${keep} | ${m}`;
  const route = (m: string): string => `meta mark set meta mark & ${keep} | ${m}`;
  type Rule = { chain: (typeof PIN_CHAINS)[number]; text: string; why: string };
  const rules: Rule[] = [];
  // A packet that already carries mark bits outside our mask belongs to another program's
  // policy (wg-quick's 51820, a VPN's SO_MARK, a firewall's marks): it is neither pinned nor
  // re-marked, so rules that compare the whole mark keep matching it (docs/pinning.md, Marks).
  const own = `meta mark & ${keep} == 0x00000000`;
  const unpinned = `ct mark & ${mask} == 0x00000000`;
  for (const m of marks) {
    const mark = hex32(m.mark);
    rules.push(
      // Only a connection whose first packet came in here (a port-forward, the router's own services): the replies of
      // one that left unpinned (another program marks it, docs/pinning.md Marks) must not pin it on their way back.
      { chain: 'prerouting', text: `iifname "${m.interface}" ct direction original ${own} ${unpinned} ${pin(mark)}`, why: `${m.uplink}: pin arriving` },
      { chain: 'postrouting', text: `oifname "${m.interface}" ${own} ${unpinned} ${pin(mark)}`, why: `${m.uplink}: pin leaving` },
    );
  }
  // One rule per chain for every uplink's pinned packets: one set lookup per packet instead of a rule per uplink, and a
  // smaller transaction. `own` leaves the packet mark no bits outside the mask, so a rule per uplink's
  // `meta mark & keep | m` (m = ct mark & mask) is just `ct mark & mask`; the set keeps it to the marks of configured
  // uplinks (docs/pinning.md, The table). In prerouting it is disjoint from `pin arriving` (iifname), so their order
  // is free; in output it stays before the exec rules, whose mark wins.
  const routePinned = `${own} ct mark & ${mask} ${uplinkMarks} meta mark set ct mark & ${mask}`;
  if (marks.length > 0) {
    rules.push(
      { chain: 'prerouting', text: `iifname != ${uplinkIfs} ${routePinned}`, why: 'route pinned' },
      { chain: 'output', text: routePinned, why: 'route pinned' },
    );
  }
  for (const c of cgroups) {
    rules.push({ chain: 'output', text: `socket cgroupv2 level ${c.level} "${c.nftPath}" ${route(hex32(c.mark))}`, why: `${c.uplink}: uplinkd exec` });
  }
  const chainType = { prerouting: 'filter', output: 'route', postrouting: 'filter' } as const;
  const hook = (chain: (typeof PIN_CHAINS)[number]) => `type ${chainType[chain]} hook ${chain}`;
  const chains: NftObject[] = [
    ...(marks.length > 0 ? PIN_CHAINS : []).map((c) => ({ kind: 'chain', name: c, type: chainType[c], hook: c, prio: PRIORITY.mangle, policy: 'accept' })),
    ...(nat.length > 0 ? [{ kind: 'chain', name: NAT_CHAIN, type: 'nat', hook: 'postrouting', prio: PRIORITY.srcnat, policy: 'accept' }] : []),
  ];
  const body = (hash: string): string => [
    `table ${PIN_TABLE} {`,
    // nft caps comments at 128 bytes: the per-uplink marks are in the rules, not here.
    marks.length > 0 ? `\tcomment "uplinkd flow pinning, mark mask ${mask} (docs/pinning.md)"` : '\tcomment "uplinkd (docs/policies.md)"',
    ...(marks.length > 0 ? PIN_CHAINS : []).flatMap((chain) => [
      `\tchain ${chain} {`,
      `\t\t${hook(chain)} priority mangle; policy accept;`,
      ...rules.filter((r) => r.chain === chain).map((r) => `\t\t${r.text} comment "${r.why} #${hash}"`),
      '\t}',
    ]),
    ...(nat.length > 0 ? [
      `\tchain ${NAT_CHAIN} {`,
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      ...nat.map((n) => `\t\t${n.text} comment "${n.uplink}: nat #${hash}"`),
      '\t}',
    ] : []),
    '}',
  ].join('\n') + '\n';
  const hash = createHash('sha256').update(body('')).digest('hex').slice(0, 16);
  const table = body(hash);
  return {
    table,
    // Creating the table first makes the delete valid when it does not exist yet.
    script: `table ${PIN_TABLE}\ndelete table ${PIN_TABLE}\n${table}`,
    hash,
    cgroups,
    rules: rules.length + nat.length,
    effect: rulesEffectDigest([
      ...rules.map((r) => ({ chain: r.chain as string, effect: writtenRuleEffect(r.text) })),
      ...nat.map((n) => ({ chain: NAT_CHAIN, effect: writtenRuleEffect(n.text) })),
    ]),
    layout: pinningLayout(chains),
    summary: [
      ...(marks.length > 0 ? [`pinning ${marks.map((m) => `${m.uplink} (${m.interface}) to mark ${hex32(m.mark)}/${mask}`).join(', ')}`] : []),
      ...(nat.length > 0 ? [`nat ${nat.map((n) => `${n.uplink}: ${n.text.replace(/^oifname "[^"]+" /, '')}`).join(', ')}`] : []),
    ].join('; '),
  };
}

/** The script that removes the table if it exists, and nothing else. */
export const DELETE_SCRIPT = `table ${PIN_TABLE}\ndelete table ${PIN_TABLE}\n`;
