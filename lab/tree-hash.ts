// A fingerprint of a directory tree, to show that a guest run left the host's files as they were.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * path -> sha256 of (type, mode, content) for every regular file and symlink (its target) under
 * `root`, directories by mode only; `skip(relativePath)` leaves a subtree out. Unreadable entries
 * are recorded as such, so a change in readability shows too.
 */
export async function hashTree(root: string, skip: (rel: string) => boolean = () => false): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel);
    const st = await fs.lstat(abs).catch(() => undefined);
    if (!st) return out.set(rel, 'vanished') && undefined;
    const h = createHash('sha256').update(`${st.mode.toString(8)}\0`);
    if (st.isSymbolicLink()) h.update(`link\0${await fs.readlink(abs)}`);
    else if (st.isFile()) h.update('file\0').update(await fs.readFile(abs).catch((e: Error) => `unreadable ${e.message}`));
    else if (st.isDirectory()) {
      h.update('dir');
      const names = (await fs.readdir(abs).catch(() => [] as string[])).sort();
      h.update(`\0${names.join('\0')}`);
      for (const n of names) {
        const child = path.join(rel, n);
        if (!skip(child)) await walk(child);
      }
    } else h.update('other');
    out.set(rel, h.digest('hex'));
  };
  await walk('');
  return out;
}

/** Paths whose fingerprint differs between two hashTree results (added, removed or changed), sorted. */
export function treeDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.get(k) !== after.get(k)).sort();
}
