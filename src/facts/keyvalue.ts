// KEY=VALUE text files (networkd leases, the udhcpc hook's lease file).
import { UplinkdError } from '../errors';

/** KEY=VALUE lines, `#` comments and blank lines ignored, optional double quotes stripped. */
export function parseKeyValues(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UplinkdError('io', `not a KEY=VALUE line: "${line}"`);
    values.set(line.slice(0, eq), line.slice(eq + 1).replace(/^"(.*)"$/, '$1'));
  }
  return values;
}
