// Other programs' packet and conntrack marks, and where they touch the bits flow pinning
// owns (pinning.mark_mask). Pure: the inputs are the kernel's policy rules, the JSON of
// `nft -j list ruleset` (libnftables-json(5)) and the text of `iptables-save`; the output is
// one warning per foreign use, saying what to change (docs/pinning.md, "Foreign marks").
import { hex32 } from '../model/text';
import type { Rule } from '../model/types';
import { DEFAULTS } from '../config/defaults';


/** One place where another program matches or writes marks: `value` under `mask` (0xffffffff = the whole mark). */
export interface MarkUse {
  /** What the admin recognises: `ip rule 100: fwmark 0x80000/0xff0000 lookup 52`, `nft table inet x chain y`, ... */
  where: string;
  value: number;
  mask: number;
}

const FULL = 0xffffffff;

/** Foreign policy rules with an fwmark (rules of protocol `ownProtocol` are uplinkd's). */
export function ruleMarkUses(rules: readonly Rule[], ownProtocol: number): MarkUse[] {
  return rules
    .filter((r) => r.protocol !== ownProtocol && r.fwmark !== undefined)
    .map((r) => {
      const mask = (r.fwmask ?? FULL) >>> 0;
      const mark = `${r.invert ? 'not ' : ''}fwmark ${hexShort(r.fwmark!)}${mask === FULL ? '' : `/${hexShort(mask)}`}`;
      return { where: `ip rule ${r.priority}: ${mark} ${r.action === 'lookup' ? `lookup ${r.table}` : r.action}`, value: r.fwmark! >>> 0, mask };
    });
}

function hexShort(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

type Json = unknown;

function isMarkKey(e: Json): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<string, Record<string, unknown> | undefined>;
  return o.meta?.key === 'mark' || o.ct?.key === 'mark';
}

/** Numbers in an nft JSON expression that sits on a mark: `{"&": [{"meta": {"key": "mark"}}, 255]}`, `{"|": [...]}`. */
function markOperands(e: Json, out: { masks: number[]; values: number[] }): boolean {
  if (isMarkKey(e)) return true;
  if (typeof e !== 'object' || e === null) return false;
  const o = e as Record<string, unknown>;
  for (const op of ['&', '|', '^'] as const) {
    const args = o[op];
    if (Array.isArray(args) && args.length === 2 && markOperands(args[0], out)) {
      if (typeof args[1] === 'number') (op === '&' ? out.masks : out.values).push(args[1] >>> 0);
      return true;
    }
  }
  return false;
}

function numbers(e: Json): number[] {
  if (typeof e === 'number') return [e >>> 0];
  if (Array.isArray(e)) return e.flatMap(numbers);
  if (typeof e === 'object' && e !== null) {
    const o = e as Record<string, unknown>;
    if (o.set !== undefined) return numbers(o.set);
    if (o.range !== undefined) return numbers(o.range);
  }
  return [];
}

/**
 * Mark matches and sets in every table of an `nft -j list ruleset` document except `skipTable`
 * (family and name, e.g. `ip uplinkd`). A `match` on `meta mark` / `ct mark` (optionally `& MASK`)
 * and a `mangle` of either key (optionally `(mark & KEEP) | VALUE`) are uses; a set of the whole
 * mark from another key (`meta mark set ct mark`) copies rather than chooses bits and is skipped.
 */
export function nftMarkUses(doc: Json, skipTable: string): MarkUse[] {
  const items = (doc as { nftables?: Json[] } | null)?.nftables;
  if (!Array.isArray(items)) return [];
  const uses: MarkUse[] = [];
  for (const item of items) {
    const rule = (item as { rule?: { family: string; table: string; chain: string; expr?: Json[] } }).rule;
    if (!rule || `${rule.family} ${rule.table}` === skipTable || !Array.isArray(rule.expr)) continue;
    const where = `nft table ${rule.family} ${rule.table} chain ${rule.chain}`;
    for (const stmt of rule.expr) {
      const s = stmt as { match?: { left: Json; right: Json }; mangle?: { key: Json; value: Json } };
      if (s.match) {
        const found = { masks: [] as number[], values: [] as number[] };
        if (!markOperands(s.match.left, found)) continue;
        const mask = found.masks.reduce((a, b) => (a & b) >>> 0, FULL);
        for (const value of numbers(s.match.right)) uses.push({ where, value, mask });
      } else if (s.mangle && isMarkKey(s.mangle.key)) {
        if (typeof s.mangle.value === 'number') {
          uses.push({ where, value: s.mangle.value >>> 0, mask: FULL });
          continue;
        }
        const found = { masks: [] as number[], values: [] as number[] };
        if (!markOperands(s.mangle.value, found) || found.masks.length + found.values.length === 0) continue;
        // (mark & KEEP) | VALUE writes the bits outside KEEP and VALUE's bits (nft folds VALUE into
        // KEEP: `& 0xff00ffff | 0x80000` is listed as `& 0xff08ffff | 0x80000`).
        const value = found.values.reduce((a, b) => (a | b) >>> 0, 0);
        const keep = found.masks.reduce((a, b) => (a & b) >>> 0, FULL);
        uses.push({ where, value, mask: (~keep | value) >>> 0 });
      }
    }
  }
  return uses;
}

/**
 * True when a rule of the `ip` family in an `nft -j list ruleset` document holds an `xt` statement: a
 * match or target iptables-nft made through the kernel's x_tables compatibility layer (e.g. `-j MARK`,
 * `-j CONNMARK`), which libnftables-json(5) prints by name only, without its marks; only
 * `iptables-save` shows those.
 */
export function hasXtStatements(doc: Json): boolean {
  const items = (doc as { nftables?: Json[] } | null)?.nftables;
  if (!Array.isArray(items)) return false;
  return items.some((item) => {
    const rule = (item as { rule?: { family?: string; expr?: Json[] } }).rule;
    return rule?.family === 'ip' && Array.isArray(rule.expr) && rule.expr.some((e) => typeof e === 'object' && e !== null && 'xt' in e);
  });
}

function parseNumber(text: string): number | undefined {
  const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  return Number.isFinite(n) && n <= FULL ? n >>> 0 : undefined;
}

/** `V[/M]` as iptables prints marks; M defaults to the whole mark. */
function valueMask(text: string | undefined): { value: number; mask: number } | undefined {
  if (text === undefined) return undefined;
  const [v, m] = text.split('/');
  const value = parseNumber(v);
  const mask = m === undefined ? FULL : parseNumber(m);
  return value === undefined || mask === undefined ? undefined : { value, mask };
}

/**
 * Mark matches and targets in `iptables-save` output: `-m mark --mark V/M`, `-m connmark --mark V/M`,
 * `-j MARK --set-xmark V/M` (also `--set-mark`, `--or-mark V`, `--and-mark V`), `-j CONNMARK --set-xmark V/M`,
 * and CONNMARK's `--nfmask`/`--ctmask`/`--mask` of save/restore. `label` names the tool (`iptables`, `iptables-legacy`).
 */
export function iptablesMarkUses(text: string, label = 'iptables'): MarkUse[] {
  const uses: MarkUse[] = [];
  let table = 'filter';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    if (!line.startsWith('-A ')) continue;
    const words = line.trim().split(/\s+/);
    const where = `${label} -t ${table} ${line.trim()}`;
    for (let i = 0; i < words.length - 1; i++) {
      const w = words[i];
      const next = words[i + 1];
      let use: { value: number; mask: number } | undefined;
      if (w === '--mark' || w === '--set-xmark' || w === '--set-mark') use = valueMask(next);
      else if (w === '--or-mark') use = valueMask(`${next}/${next}`);
      else if (w === '--and-mark') {
        const v = parseNumber(next);
        if (v !== undefined) use = { value: 0, mask: ~v >>> 0 };
      } else if (w === '--nfmask' || w === '--ctmask' || w === '--mask') {
        const m = parseNumber(next);
        if (m !== undefined) use = { value: 0, mask: m };
      }
      if (use) uses.push({ where, ...use });
    }
  }
  return uses;
}

/** Bits of `ours` that a use touches: its mask when it is a region, its value when it compares the whole mark. */
export function overlap(use: MarkUse, ours: number): number {
  const region = use.mask === FULL ? 0 : use.mask;
  return ((region | use.value) & ours) >>> 0;
}

/**
 * A mask no use touches that holds marks for `uplinks` uplinks: `preferred` (the default mask)
 * when it is free, else the widest free run of bits, bit 31 left out like the default.
 * Undefined when there is none.
 */
export function freeMask(uses: readonly MarkUse[], uplinks: number, preferred = DEFAULTS.pinning.markMask): number | undefined {
  let taken = 0x80000000;
  for (const u of uses) taken = (taken | overlap(u, FULL)) >>> 0;
  if (((taken & preferred) >>> 0) === 0) return preferred;
  let best: { start: number; len: number } | undefined;
  for (let bit = 31; bit >= 0;) {
    if ((taken >>> bit) & 1) {
      bit--;
      continue;
    }
    let low = bit;
    while (low > 0 && ((taken >>> (low - 1)) & 1) === 0) low--;
    const len = bit - low + 1;
    if (!best || len > best.len) best = { start: low, len };
    bit = low - 1;
  }
  if (!best || 2 ** best.len - 1 < uplinks) return undefined;
  return ((2 ** best.len - 1) * 2 ** best.start) >>> 0;
}

/**
 * One warning per foreign mark use in `uses` that touches `mask`, with the change that avoids every
 * foreign use found, `uses` and `others` together (ip rules' fwmark/mask, nft and iptables mark
 * statements and matches): `set pinning.mark_mask to 0x...` or, when no run of bits is free, what
 * else to do. Empty when none of `uses` clashes. `others` undefined: the other sources were not read,
 * and the suggestion says so (`uplinkd check` reads them all).
 */
export function markNeighbourWarnings(uses: readonly MarkUse[], mask: number, uplinks: number, others?: readonly MarkUse[]): string[] {
  const clashes = uses.filter((u) => overlap(u, mask) !== 0);
  if (clashes.length === 0) return [];
  const free = freeMask([...uses, ...(others ?? [])], uplinks);
  const fix = free !== undefined
    ? `set pinning.mark_mask to ${hex32(free)} (${others ? 'no ip rule, nftables or iptables rule found uses those bits' : 'free of these uses only; `uplinkd check` weighs ip rules, nftables and iptables marks together'})`
    : 'no run of mark bits is free of other rules: move the other program\'s marks or set pinning: {enabled: false}';
  const seen = new Set<string>();
  const warnings: string[] = [];
  for (const u of clashes) {
    const key = `${u.where}|${u.value}|${u.mask}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const what = u.mask === FULL ? `mark ${hexShort(u.value)}` : `mark bits ${hexShort(u.mask)}${u.value ? ` (value ${hexShort(u.value)})` : ''}`;
    warnings.push(`${u.where} uses ${what}, which overlaps flow pinning's mark mask ${hex32(mask)} in ${hex32(overlap(u, mask))}: ${fix}`);
  }
  return warnings;
}
