// Glob patterns, with the shell's rules (`*`, `?`, `[...]`, `{a,b}`; a leading dot matched only by a
// pattern's dot), through picomatch and fast-glob: lease-file paths (paths.leases) and interface
// names (lan:).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import picomatch from 'picomatch';
import fg from 'fast-glob';

/** True when `pattern` has glob syntax (otherwise it names one path or interface). */
export function isGlob(pattern: string): boolean {
  return picomatch.scan(pattern).isGlob;
}

/**
 * A matcher for one name (an interface name, or the last segment of a path) against `pattern`;
 * `*` and `?` never cross a `/`.
 */
export function nameMatcher(pattern: string): (name: string) => boolean {
  const matches = picomatch(pattern);
  return (name) => matches(name); // one argument: picomatch's second asks for a result object
}

/**
 * Existing paths matching an absolute or relative `pattern`, as absolute paths, sorted; a missing or
 * unreadable directory matches nothing (never throws). Every kind of entry is listed, a directory or
 * a FIFO too, so that the lease reader can say why it skips one.
 */
export async function expandGlob(pattern: string): Promise<string[]> {
  const dir = listedDirectory(pattern);
  if (dir === undefined) return (await fg(pattern, { absolute: true, onlyFiles: false, suppressErrors: true })).sort();
  let stat;
  try {
    stat = await fsp.stat(dir, { bigint: true });
  } catch {
    listings.delete(pattern);
    return []; // a missing or unreadable directory matches nothing
  }
  const known = listings.get(pattern);
  if (known && known.mtimeNs === stat.mtimeNs && known.ino === stat.ino) return [...known.paths];
  const paths = (await fg(pattern, { absolute: true, onlyFiles: false, suppressErrors: true })).sort();
  // A change within the file system's timestamp granularity of this listing may leave the mtime as it is ("racy git"):
  // a listing of a directory changed in the last RACY_NS is not kept.
  if (BigInt(Date.now()) * 1_000_000n - stat.mtimeNs > RACY_NS) {
    if (listings.size >= LISTINGS_MAX) listings.clear();
    listings.set(pattern, { mtimeNs: stat.mtimeNs, ino: stat.ino, paths });
  } else {
    listings.delete(pattern);
  }
  return [...paths];
}

/**
 * The last listing of each pattern whose wildcards are all in its last segment (a lease directory's files): a
 * directory's mtime changes whenever an entry is added, removed or renamed in it, so while it stays the listing
 * stands, and a cycle costs one stat(2) per pattern instead of a directory read and a glob compile (about half a
 * millisecond a cycle for the default lease patterns). File contents are always read again.
 */
const listings = new Map<string, { mtimeNs: bigint; ino: bigint; paths: string[] }>();
const LISTINGS_MAX = 256;
/** Two seconds: far above the kernel's coarse clock tick that stamps directory changes (a few ms). */
const RACY_NS = 2_000_000_000n;
/** Per pattern: the directory it lists when only its last segment has glob syntax (then cacheable), else undefined. */
const directories = new Map<string, string | undefined>();

function listedDirectory(pattern: string): string | undefined {
  if (directories.has(pattern)) return directories.get(pattern);
  const dir = path.isAbsolute(pattern) ? path.dirname(pattern) : undefined;
  const cacheable = dir !== undefined && !/[*?[\]{}()!\\]/.test(dir) && isGlob(path.basename(pattern));
  if (directories.size >= LISTINGS_MAX) directories.clear();
  directories.set(pattern, cacheable ? dir : undefined);
  return cacheable ? dir : undefined;
}
