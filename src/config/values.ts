// Pure checks for single configuration values (names, durations, numbers the kernel reserves).
import { escapeControl } from '../log';

/** Longest excerpt of a config value quoted in a message, characters. */
const EXCERPT_CHARS = 60;

/**
 * A value from the file as a message shows it: in single quotes, control and formatting
 * characters escaped (escapeControl), cut to EXCERPT_CHARS with "…" so a binary or huge file
 * cannot flood or drive the terminal or log.
 */
export function quoted(value: unknown): string {
  const text = String(value);
  const cut = text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
  return `'${escapeControl(cut)}'`;
}

/** Table numbers the kernel gives meaning to: unspec, default, main, local. */
export const RESERVED_TABLES: ReadonlyMap<number, string> = new Map([
  [0, 'unspec'], [253, 'default'], [254, 'main'], [255, 'local'],
]);

/**
 * Route protocol numbers uplinkd must not claim: it deletes routes carrying its own protocol,
 * so taking one that a DHCP client or routing daemon uses would delete that program's routes.
 * 0..4 are the kernel's own and are rejected by range.
 */
export const RESERVED_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [9, 'ra (IPv6 router advertisements)'], [11, 'zebra'], [12, 'bird'], [16, 'dhcp'], [18, 'keepalived'],
  [42, 'babel'], [186, 'bgp'], [187, 'isis'], [188, 'ospf'], [189, 'rip'], [192, 'eigrp'],
]);

/** Names iproute2 already maps to tables. */
const RESERVED_TABLE_NAMES = ['main', 'local', 'default', 'unspec'];
/** The iproute2 name of uplinkd's balance table (config.tableBase), written by src/engine/names.ts. */
export const BALANCE_TABLE_NAME = 'uplinkd';

/** Why `name` cannot be an iproute2 table name, or undefined when it can. */
export function tableNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9_.-]{0,31}$/.test(name))
    return 'expected a letter followed by up to 31 letters, digits, _ . or - (it becomes the table name)';
  if (RESERVED_TABLE_NAMES.includes(name.toLowerCase()))
    return `${quoted(name)} is an iproute2 table name already (expected a name other than ${RESERVED_TABLE_NAMES.join(', ')})`;
  // iproute2 names the balance table so (src/engine/names.ts); two tables of one name would make the name file ambiguous.
  if (name.toLowerCase() === BALANCE_TABLE_NAME) return `${quoted(name)} is the name of uplinkd's balance table (expected another name)`;
  return undefined;
}

/** Why `name` cannot be a Linux interface name (dev_valid_name), or undefined when it can. */
export function ifnameProblem(name: string): string | undefined {
  if (name.length > 15) return `${quoted(name)} is longer than 15 characters (IFNAMSIZ)`;
  if (name === '.' || name === '..' || /[\s/:]/.test(name))
    return `${quoted(name)} is not a valid interface name (no '/', ':' or whitespace, not '.' or '..')`;
  return undefined;
}

/** RFC 1123 host name; all-numeric dotted strings are not (they are mistyped addresses). */
export function isHostname(name: string): boolean {
  if (name.length > 253 || /^[0-9.]+$/.test(name)) return false;
  return name.replace(/\.$/, '').split('.')
    .every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "250ms", "1.5s", "2m", "1h" -> milliseconds; undefined when malformed or not whole milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * DURATION_UNITS[m[2]];
  // Round away float noise (1.1s = 1100.0000000000002) but refuse sub-millisecond values.
  const rounded = Math.round(ms);
  return Math.abs(ms - rounded) < 1e-6 && Number.isSafeInteger(rounded) ? rounded : undefined;
}

/** The known key closest to a mistyped one, when the mistake is small. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const allowed = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  return bestDistance <= allowed ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/**
 * Why `mask` cannot hold the pinning marks of `uplinks` uplinks, or undefined when it can.
 * An uplink's mark is its mark index (1..run, from its name) << (the mask's lowest set bit), so the
 * mask must be one run of bits with room for the number of uplinks (0 means "not pinned").
 */
export function markMaskProblem(mask: number, uplinks: number): string | undefined {
  const hex = `0x${mask.toString(16).padStart(8, '0')}`;
  if (!Number.isInteger(mask) || mask <= 0 || mask > 0xffffffff) return `${mask} is not a 32-bit mask (expected e.g. 0x7f000000)`;
  const run = mask >>> markShift(mask);
  if ((run & (run + 1)) !== 0) return `${hex} is not one run of bits (expected e.g. 0x7f000000)`;
  if (uplinks > run) return `${hex} holds marks for ${run} uplink${run === 1 ? '' : 's'}, not ${uplinks} (expected a wider mask)`;
  return undefined;
}

/** Position of the lowest set bit of a non-zero 32-bit mask. */
export function markShift(mask: number): number {
  let shift = 0;
  while (shift < 31 && ((mask >>> shift) & 1) === 0) shift++;
  return shift;
}
