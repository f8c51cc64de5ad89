// ISC dhclient lease database (dhclient.leases(5)): a sequence of `lease { ... }`
// blocks appended as leases are acquired; the last block for an interface is current.
// Times are `expire W YYYY/MM/DD HH:MM:SS;` in UTC, `expire never;`, or with
// `db-time-format local`, `expire epoch N; # date`.
import type { Lease } from '../model/facts';
import { UplinkdError } from '../errors';
import { firstIpv4, isIpv4 } from '../model/ipv4';
import { applyRoutingOptions, decodeClasslessRoutes, type RoutingOptions } from './classless';

type Token = { kind: 'word' | 'string' | 'punct'; text: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '{' || ch === '}' || ch === ';') {
      tokens.push({ kind: 'punct', text: ch });
      i++;
    } else if (ch === '"') {
      let value = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      if (i >= text.length) throw new UplinkdError('io', 'unterminated string in dhclient lease file');
      i++;
      tokens.push({ kind: 'string', text: value });
    } else {
      const start = i;
      while (i < text.length && !/[\s{};"#]/.test(text[i])) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i) });
    }
  }
  return tokens;
}

/** Statements of one block, split at `;`; nested blocks are skipped. Returns the index after the closing brace. */
function readBlock(tokens: Token[], start: number): { statements: Token[][]; end: number } {
  const statements: Token[][] = [];
  let current: Token[] = [];
  let i = start;
  while (i < tokens.length) {
    const t = tokens[i];
    if (t.kind === 'punct' && t.text === '}') {
      if (current.length > 0) statements.push(current);
      return { statements, end: i + 1 };
    }
    if (t.kind === 'punct' && t.text === '{') {
      i = readBlock(tokens, i + 1).end;
      current = [];
      continue;
    }
    if (t.kind === 'punct' && t.text === ';') {
      if (current.length > 0) statements.push(current);
      current = [];
    } else {
      current.push(t);
    }
    i++;
  }
  throw new UplinkdError('io', 'unterminated block in dhclient lease file');
}

/** `W YYYY/MM/DD HH:MM:SS` (UTC), `epoch N` or `never`; undefined for never. */
export function parseDhclientTime(words: string[]): number | undefined {
  if (words[0] === 'never') return undefined;
  if (words[0] === 'epoch' && /^\d+$/.test(words[1] ?? '')) return Number(words[1]) * 1000;
  const date = /^(\d{4})\/(\d{1,2})\/(\d{1,2})$/.exec(words[1] ?? '');
  const time = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(words[2] ?? '');
  if (!/^\d$/.test(words[0] ?? '') || !date || !time) {
    throw new UplinkdError('io', `unreadable dhclient time "${words.join(' ')}"`);
  }
  const [y, mo, d] = date.slice(1).map(Number);
  const [h, mi, s] = time.slice(1).map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

/**
 * Names dhclient gives options 121 and 249: Debian's dhclient.conf declares
 * `rfc3442-classless-static-routes code 121 = array of unsigned integer 8`, other configs use
 * other names, and an undeclared option is written as `unknown-<code>`.
 */
const CLASSLESS_NAMES = new Set(['rfc3442-classless-static-routes', 'classless-static-routes', 'unknown-121']);
const MS_CLASSLESS_NAMES = new Set(['ms-classless-static-routes', 'unknown-249']);

/** An option's octets: `0,192,0,2,1` (array of unsigned integer 8) or `0:c0:0:2:1` (hex, for unknown options). */
function optionOctets(words: string[]): number[] {
  const text = words.join('');
  const hex = text.includes(':');
  const octets = text.split(hex ? ':' : ',').map((w) => (hex ? /^[0-9a-f]{1,2}$/i : /^\d{1,3}$/).test(w) ? parseInt(w, hex ? 16 : 10) : NaN);
  if (octets.some((o) => !(o >= 0 && o <= 255))) throw new UplinkdError('io', `unreadable dhclient option octets "${text}"`);
  return octets;
}

function leaseFromStatements(statements: Token[][], file: string): Lease | undefined {
  let iface: string | undefined;
  const facts: Pick<Lease, 'address' | 'expiresAt'> = {};
  const routing: RoutingOptions = {};
  for (const statement of statements) {
    const [head, ...rest] = statement.map((t) => t.text);
    if (head === 'interface') iface = rest[0];
    else if (head === 'fixed-address' && isIpv4(rest[0] ?? '')) facts.address = rest[0];
    else if (head === 'option' && rest[0] === 'routers') routing.router = firstIpv4(rest.slice(1).join(' '));
    else if (head === 'option' && CLASSLESS_NAMES.has(rest[0])) routing.classless = decodeClasslessRoutes(optionOctets(rest.slice(1)));
    else if (head === 'option' && MS_CLASSLESS_NAMES.has(rest[0])) routing.msClassless = decodeClasslessRoutes(optionOctets(rest.slice(1)));
    else if (head === 'expire') facts.expiresAt = parseDhclientTime(rest);
  }
  if (!iface) return undefined;
  const lease: Lease = { interface: iface, client: 'dhclient', file };
  for (const key of ['address', 'expiresAt'] as const) {
    if (facts[key] !== undefined) Object.assign(lease, { [key]: facts[key] });
  }
  return applyRoutingOptions(lease, routing);
}

/**
 * The current lease per interface in a dhclient lease file (the last `lease` block
 * naming it). Blocks without an `interface` statement and `lease6` blocks are ignored.
 * Throws UplinkdError('io') when the file is not a well-formed lease database.
 */
export function parseDhclientLeases(text: string, file: string): Lease[] {
  const tokens = tokenize(text);
  const byInterface = new Map<string, Lease>();
  let i = 0;
  let pending: Token[] = [];
  while (i < tokens.length) {
    const t = tokens[i];
    if (t.kind === 'punct' && t.text === '{') {
      const { statements, end } = readBlock(tokens, i + 1);
      if (pending.length === 1 && pending[0].text === 'lease') {
        const lease = leaseFromStatements(statements, file);
        if (lease) {
          byInterface.delete(lease.interface); // keep file order: last block last
          byInterface.set(lease.interface, lease);
        }
      }
      pending = [];
      i = end;
      continue;
    }
    if (t.kind === 'punct' && t.text === '}') throw new UplinkdError('io', 'unbalanced "}" in dhclient lease file');
    if (t.kind === 'punct' && t.text === ';') pending = [];
    else pending.push(t);
    i++;
  }
  return [...byInterface.values()];
}
