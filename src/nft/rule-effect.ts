// What a rule of `table ip uplinkd` does, in one canonical text, from either side: the nft statements uplinkd writes
// (src/nft/ruleset.ts, src/nft/nat.ts) and the rule as `nft -j list` reads it back (libnftables-json(5) `expr`). The
// comment is no part of it: a rule edited by hand that keeps its comment, or another rule given a copied comment,
// reads back as what it now does. nft does not print a rule as it was written (`ct mark & 0x80ffffff | 0x01000000`
// comes back as `& 0x81ffffff | 0x01000000`, a set match gains `==`), so a bit operation on a mark is reduced to
// the function it computes, (x & A) ^ X per bit (the kernel's nft_bitwise: mask and xor), which has one form.
import { createHash } from 'node:crypto';
import { UplinkdError } from '../errors';

/** A mark expression reduced to (base & and) ^ xor, both unsigned 32-bit. */
interface Bits { base: string; and: number; xor: number }

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** Applies `op` with the constant `c` to (x & and) ^ xor, staying in that form. */
function applyBit(b: Bits, op: string, c: number): Bits {
  switch (op) {
    case '&': return { base: b.base, and: (b.and & c) >>> 0, xor: (b.xor & c) >>> 0 };
    case '|': return { base: b.base, and: (b.and & ~c) >>> 0, xor: (b.xor | c) >>> 0 };
    case '^': return { base: b.base, and: b.and, xor: (b.xor ^ c) >>> 0 };
    default: throw new UplinkdError('config', `not a bit operation: ${op}`);
  }
}

const bitsText = (b: Bits): string => (b.and === 0xffffffff && b.xor === 0 ? b.base : `${b.base} & ${hex(b.and)} ^ ${hex(b.xor)}`);

/** A value: a number as 0x%08x, a string quoted, a set as its sorted members (one member as itself: nft reads it back so). */
function valueText(v: unknown): string {
  if (typeof v === 'number') return hex(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (v && typeof v === 'object' && 'set' in v && Array.isArray((v as { set: unknown }).set)) {
    const members = [...new Set((v as { set: unknown[] }).set.map(valueText))].sort();
    return members.length === 1 ? members[0]! : `{${members.join(',')}}`;
  }
  return `?${JSON.stringify(v)}`;
}

// ---- the rules as nft reads them back ----

/** An expression of `nft -j` (a key, or &, |, ^ of an expression and a constant). */
function jsonExpr(e: unknown): Bits | string {
  if (!e || typeof e !== 'object') return valueText(e);
  const o = e as Record<string, unknown>;
  const key = (k: string) => (o[k] as { key?: unknown } | undefined)?.key;
  if ('meta' in o) return `meta ${String(key('meta'))}`;
  if ('ct' in o) return `ct ${String(key('ct'))}`;
  // nft 1.0.6 -j prints `socket cgroupv2` without its level; the path matched says the level.
  if ('socket' in o) return `socket ${String(key('socket'))}`;
  for (const op of ['&', '|', '^']) {
    const args = o[op];
    if (Array.isArray(args) && args.length === 2 && typeof args[1] === 'number') {
      const inner = jsonExpr(args[0]);
      const bits = typeof inner === 'string' ? { base: inner, and: 0xffffffff, xor: 0 } : inner;
      return applyBit(bits, op, args[1]);
    }
  }
  return `?${JSON.stringify(e)}`;
}

const exprText = (e: Bits | string): string => (typeof e === 'string' ? e : bitsText(e));

/** One statement of a rule's `expr`, canonical; what is not known here is kept as its JSON (so it never matches). */
function jsonStatement(s: unknown): string {
  const o = (s && typeof s === 'object' ? s : {}) as Record<string, unknown>;
  if (o.match && typeof o.match === 'object') {
    const m = o.match as { op?: unknown; left?: unknown; right?: unknown };
    const op = m.op === 'in' ? '==' : String(m.op);
    return `${exprText(jsonExpr(m.left))} ${op} ${valueText(m.right)}`;
  }
  if (o.mangle && typeof o.mangle === 'object') {
    const m = o.mangle as { key?: unknown; value?: unknown };
    return `${exprText(jsonExpr(m.key))} = ${exprText(jsonExpr(m.value))}`;
  }
  if ('masquerade' in o && (o.masquerade === null || JSON.stringify(o.masquerade) === '{}')) return 'masquerade';
  if (o.snat && typeof o.snat === 'object' && Object.keys(o.snat).join() === 'addr') return `snat to ${String((o.snat as { addr: unknown }).addr)}`;
  return `?${JSON.stringify(s)}`;
}

/** What a rule read back with `nft -j list` does: its `expr` statements, canonical, in order. */
export function jsonRuleEffect(expr: readonly unknown[]): string {
  return expr.map(jsonStatement).join('; ');
}

// ---- the rules as uplinkd writes them ----

/** Words of an nft statement list: a quoted string and a braced set are one word each. */
function words(text: string): string[] {
  return text.match(/"[^"]*"|\{[^}]*\}|\S+/g) ?? [];
}

const NUMBER = /^(0x[0-9a-f]+|[0-9]+)$/i;

/** A value as written, in libnftables-json: a quoted string, a number, a symbol (`original`), or `{ a, b }` as a set. */
function writtenValue(word: string): unknown {
  if (word.startsWith('{')) return { set: word.slice(1, -1).split(',').map((m) => m.trim()).filter((m) => m !== '').map(writtenValue) };
  if (word.startsWith('"')) return word.slice(1, -1);
  if (NUMBER.test(word)) return Number(word);
  return word;
}

/**
 * A rule as uplinkd writes it (`text`: its statements without the comment) as the libnftables-json statements
 * (libnftables-json(5) `expr`) that say the same, for jsonRuleEffect. Knows the statements uplinkd writes:
 * `iifname|oifname [!=] V`, `ct direction V`, `meta|ct mark [& M]... [==|!=] V`, `meta|ct mark set EXPR`,
 * `socket cgroupv2 level N "PATH"`, `masquerade`, `snat to A`. Throws UplinkdError('config') on anything else: a rule
 * of ours this cannot read is a bug for the tests to catch, not a table to replace at every read.
 */
export function writtenRuleExpr(text: string): unknown[] {
  const w = words(text);
  const out: unknown[] = [];
  let i = 0;
  const fail = (): never => {
    throw new UplinkdError('config', `cannot read uplinkd's own nft rule at '${w.slice(i).join(' ')}': ${text}`);
  };
  const next = (): string => w[i++] ?? fail();
  /** A key (`meta mark`, `ct mark`) followed by bit operations with constants. */
  const bitExpr = (): unknown => {
    let e: unknown = { [next()]: { key: next() } };
    while (['&', '|', '^'].includes(w[i] ?? '') && NUMBER.test(w[i + 1] ?? '')) {
      const op = next();
      e = { [op]: [e, Number(next())] };
    }
    return e;
  };
  while (i < w.length) {
    const t = w[i]!;
    if (t === 'iifname' || t === 'oifname') {
      i++;
      const op = w[i] === '!=' ? next() : '==';
      out.push({ match: { op, left: { meta: { key: t } }, right: writtenValue(next()) } });
    } else if (t === 'ct' && w[i + 1] === 'direction') {
      i += 2;
      out.push({ match: { op: '==', left: { ct: { key: 'direction' } }, right: writtenValue(next()) } });
    } else if ((t === 'ct' || t === 'meta') && w[i + 1] === 'mark' && w[i + 2] === 'set') {
      i += 3;
      const value = ['ct', 'meta'].includes(w[i] ?? '') && w[i + 1] === 'mark' ? bitExpr() : writtenValue(next());
      out.push({ mangle: { key: { [t]: { key: 'mark' } }, value } });
    } else if ((t === 'ct' || t === 'meta') && w[i + 1] === 'mark') {
      const left = bitExpr();
      const op = w[i] === '==' || w[i] === '!=' ? next() : '==';
      out.push({ match: { op, left, right: writtenValue(next()) } });
    } else if (t === 'socket' && w[i + 1] === 'cgroupv2' && w[i + 2] === 'level') {
      i += 3;
      const level = Number(next());
      out.push({ match: { op: '==', left: { socket: { key: 'cgroupv2', level } }, right: writtenValue(next()) } });
    } else if (t === 'masquerade') {
      i++;
      out.push({ masquerade: null });
    } else if (t === 'snat' && w[i + 1] === 'to') {
      i += 2;
      out.push({ snat: { addr: next() } });
    } else {
      fail();
    }
  }
  return out;
}

/** What a rule as uplinkd writes it does, in jsonRuleEffect's form. Throws as writtenRuleExpr. */
export function writtenRuleEffect(text: string): string {
  return jsonRuleEffect(writtenRuleExpr(text));
}

/**
 * The digest of a table's rules by what they do: per chain (in name order) its rules' effects in order. 16 hex digits
 * of sha256; equal for the table uplinkd writes and the same table read back, whatever the comments say.
 */
export function rulesEffectDigest(rules: readonly { chain: string; effect: string }[]): string {
  const chains = [...new Set(rules.map((r) => r.chain))].sort();
  const text = chains.map((c) => `chain ${c}\n${rules.filter((r) => r.chain === c).map((r) => `\t${r.effect}\n`).join('')}`).join('');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
