// Glob patterns, with the shell's rules (`*`, `?`, `[...]`, `{a,b}`; a leading dot matched only by a
// pattern's dot), through picomatch and fast-glob: lease-file paths (paths.leases) and interface
// names (lan:).
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
  const found = await fg(pattern, { absolute: true, onlyFiles: false, suppressErrors: true });
  return found.sort();
}
