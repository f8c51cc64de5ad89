// Minimal glob for lease-file paths: `*` and `?` match within one path segment.
// Enough for patterns like /var/lib/dhcp/dhclient*.leases; no `**`, no braces.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** True when `segment` contains a wildcard. */
function isPattern(segment: string): boolean {
  return segment.includes('*') || segment.includes('?');
}

/** Regular expression matching one path segment against a wildcard pattern. */
export function segmentRegExp(pattern: string): RegExp {
  let source = '';
  for (const ch of pattern) {
    if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch {
    return []; // a missing directory simply matches nothing
  }
}

/**
 * Existing paths matching an absolute or relative pattern, sorted. Hidden entries
 * (leading dot) match only a pattern segment that starts with a dot, as in sh.
 */
export async function expandGlob(pattern: string): Promise<string[]> {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((s) => s !== '');
  let candidates = [absolute ? '/' : '.'];
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    const next: string[] = [];
    for (const base of candidates) {
      if (!isPattern(segment)) {
        next.push(path.join(base, segment));
        continue;
      }
      const re = segmentRegExp(segment);
      for (const name of await listDir(base)) {
        if (name.startsWith('.') && !segment.startsWith('.')) continue;
        if (re.test(name)) next.push(path.join(base, name));
      }
    }
    candidates = last ? next : await onlyDirectories(next);
  }
  const found = await Promise.all(candidates.map(async (p) => ((await exists(p)) ? p : undefined)));
  return found.filter((p): p is string => p !== undefined).sort();
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}

async function onlyDirectories(paths: string[]): Promise<string[]> {
  const checked = await Promise.all(
    paths.map(async (p) => {
      try {
        return (await fs.stat(p)).isDirectory() ? p : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  return checked.filter((p): p is string => p !== undefined);
}
