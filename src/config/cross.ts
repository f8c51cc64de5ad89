// Checks that span several uplinks (or uplinks and `lan:`), and table number assignment.
import type { Field, Reader } from './reader';
import { stableSlots, TABLE_SLOTS } from './identity';
import { MAX_TABLE, type UplinkDraft } from './uplinks';
import { RESERVED_TABLES, quoted } from './values';

export interface LanEntry {
  name: string;
  field: Field;
}

/** Reports a value that repeats an earlier one; `seen` maps the value to where it first appeared. */
function checkUnique(r: Reader, seen: Map<string, Field>, value: string, f: Field, what: string): void {
  const first = seen.get(value);
  if (first) {
    const line = r.locate(first.at, first.path).line;
    r.report(f.at, f.path, `${what} ${quoted(value)} is also used by ${first.path} (line ${line}) (expected each ${what} once)`);
  } else {
    seen.set(value, f);
  }
}

/**
 * Checks that span uplinks, reported on `r` with the line of the first use: each uplink name, interface and static
 * address used once, and no interface both a LAN entry and an uplink. Uplinks may share a subnet.
 */
export function checkUplinkSet(r: Reader, drafts: UplinkDraft[], lan: LanEntry[]): void {
  const names = new Map<string, Field>();
  const interfaces = new Map<string, Field>();
  for (const d of drafts) {
    const nameField = d.fields.get('name');
    if (d.name !== undefined && nameField) checkUnique(r, names, d.name, nameField, 'name');
    const ifField = d.fields.get('interface');
    if (d.interface !== undefined && ifField) checkUnique(r, interfaces, d.interface, ifField, 'interface');
  }

  const lanSeen = new Map<string, Field>();
  for (const entry of lan) {
    checkUnique(r, lanSeen, entry.name, entry.field, 'LAN interface');
    const uplink = interfaces.get(entry.name);
    if (uplink) {
      const line = r.locate(uplink.at, uplink.path).line;
      r.report(entry.field.at, entry.field.path,
        `${quoted(entry.name)} is also ${uplink.path} (line ${line}) (expected an interface to be either LAN or uplink, not both)`);
    }
  }

  // Uplinks may share a subnet (two routers on 192.168.1.0/24, several cloud NICs): each one's table
  // routes it through its own interface. One address on two uplinks is a mistake: the second
  // uplink's `from` rule could never match.
  const addresses = new Map<string, Field>();
  for (const d of drafts) {
    const f = d.fields.get('address');
    if (d.address && f) checkUnique(r, addresses, d.address.ip, f, 'address');
  }
}

/**
 * Static gateways that are this router's own addresses, reported at the gateway: another uplink's `address`
 * (always), or, given `local` (address -> device: the kernel's addresses, read by `uplinkd check`), any address of
 * the router. The kernel refuses such a gateway when it is outside the uplink's network (`onlink`: "Nexthop has
 * invalid gateway", net/ipv4/fib_semantics.c fib_check_nh_v4_gw) and inside it accepts a route whose packets stay
 * on this machine; either way the uplink never works. The uplink's own address is readGateway's.
 */
export function checkGateways(r: Reader, drafts: UplinkDraft[], local?: ReadonlyMap<string, string>): void {
  const byAddress = new Map<string, UplinkDraft>();
  for (const d of drafts) if (d.address && !byAddress.has(d.address.ip)) byAddress.set(d.address.ip, d);
  const expected = "expected the address of the provider's router: a route via one of this router's own addresses never leaves it";
  for (const d of drafts) {
    const f = d.fields.get('gateway');
    const gw = d.gateway;
    if (!f || gw === undefined || gw === d.address?.ip) continue;
    const other = byAddress.get(gw);
    const otherAt = other?.fields.get('address');
    const dev = local?.get(gw);
    if (other && otherAt) {
      r.report(f.at, f.path, `${gw} is the address of uplink ${quoted(other.name ?? '?')} (${otherAt.path}, line ${r.locate(otherAt.at, otherAt.path).line}) (${expected})`);
    } else if (dev !== undefined) {
      r.report(f.at, f.path, `${gw} is an address of this router (on ${dev}; the kernel refuses a route via it, or keeps its packets here) (${expected})`);
    }
  }
}

/**
 * Table number per uplink: its `table:`, else derived from its name (src/config/identity.ts):
 * tableBase + a slot in 1..999 that does not depend on the uplink's position in the list.
 * Reports reserved, out-of-range and duplicate explicit numbers. Returns numbers in uplink order.
 */
export function assignTables(r: Reader, drafts: UplinkDraft[], tableBase: number): number[] {
  const slots = Math.min(TABLE_SLOTS, MAX_TABLE - tableBase);
  // Explicit tables and the kernel's reserved ones are not free for derived numbers.
  const taken = new Set([...drafts.map((d) => d.table), ...RESERVED_TABLES.keys()]
    .filter((t): t is number => t !== undefined).map((t) => t - tableBase));
  const derivedNames = drafts.filter((d) => d.table === undefined && !d.fields.has('table') && d.name !== undefined).map((d) => d.name!);
  const derived = stableSlots([...new Set(derivedNames)], slots, taken);
  const seen = new Map<number, string>();
  return drafts.map((d) => {
    const explicit = d.fields.get('table');
    if (d.table === undefined) {
      if (explicit || d.name === undefined) return 0; // invalid `table:` or name, reported already
      const slot = derived.get(d.name);
      if (slot === undefined) {
        const at = d.fields.get('name') ?? d.field;
        r.report(at.at, `${d.field.path}.table`, `no free table number left in ${tableBase + 1}..${tableBase + slots} (set table: explicitly or change table_base)`);
        return 0;
      }
      return tableBase + slot;
    }
    const table = d.table;
    const at = explicit ?? d.field;
    const path = `${d.field.path}.table`;
    const fix = 'choose another number';
    const reserved = RESERVED_TABLES.get(table);
    const user = seen.get(table);
    if (reserved) r.report(at.at, path, `table ${table} is the kernel's ${quoted(reserved)} table (${fix})`);
    else if (table === tableBase) r.report(at.at, path, `table ${table} is table_base, the balanced default's table (${fix})`);
    else if (user) r.report(at.at, path, `table ${table} is also the table of ${user} (${fix})`);
    seen.set(table, d.field.path);
    return table;
  });
}
