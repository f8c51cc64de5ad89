// iproute2 name files (rt_tables.d/*.conf, rt_protos.d/*.conf: "NUMBER NAME" lines), so
// that `ip route show table uplinkd-wan1` and `proto uplinkd` read well. Write them with
// writeOwnedFile (./owned-file).
import { UplinkdError } from '../errors';

export interface NameEntry {
  number: number;
  name: string;
}

// Names iproute2 already knows; a file entry reusing one would shadow or confuse it.
const BUILTIN_TABLES = new Set(['unspec', 'default', 'main', 'local', 'all']);
const BUILTIN_PROTOS = new Set(['unspec', 'redirect', 'kernel', 'boot', 'static', 'gated', 'ra', 'mrt', 'zebra', 'bird',
  'dnrouted', 'xorp', 'ntk', 'dhcp', 'keepalived', 'babel', 'openr', 'bgp', 'isis', 'ospf', 'rip', 'eigrp']);

function render(kind: string, entries: NameEntry[], min: number, max: number, reserved: Set<string>, reservedNumbers: number[]): string {
  const numbers = new Set<number>();
  const names = new Set<string>();
  for (const { number, name } of entries) {
    if (!Number.isInteger(number) || number < min || number > max || reservedNumbers.includes(number)) {
      throw new UplinkdError('config', `${kind} number ${number} is out of range or reserved`);
    }
    // iproute2 reads "%d %s": a name must be one token and must not look like a number.
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name) || reserved.has(name)) {
      throw new UplinkdError('config', `"${name}" is not usable as an iproute2 ${kind} name`);
    }
    if (numbers.has(number) || names.has(name)) {
      throw new UplinkdError('config', `duplicate ${kind} entry ${number} ${name}`);
    }
    numbers.add(number);
    names.add(name);
  }
  return [...entries]
    .sort((a, b) => a.number - b.number)
    .map((e) => `${e.number}\t${e.name}\n`)
    .join('');
}

/** rt_tables.d content; table numbers 1..2^32-1 except main/default/local (253..255). */
export function renderRtTables(entries: NameEntry[]): string {
  return render('table', entries, 1, 0xffffffff, BUILTIN_TABLES, [253, 254, 255]);
}

/** rt_protos.d content; protocol numbers 0..255. */
export function renderRtProtos(entries: NameEntry[]): string {
  return render('protocol', entries, 0, 255, BUILTIN_PROTOS, []);
}

export { OWNED_HEADER, removeOwnedFile, writeOwnedFile } from './owned-file';
