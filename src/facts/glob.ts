// Glob patterns, with the shell's rules (`*`, `?`, `[...]`, `{a,b}`; a leading dot matched only by a
// pattern's dot), through picomatch and tinyglobby: lease-file paths (paths.leases) and interface
// names (lan:).
import picomatch from 'picomatch';
import { glob } from 'tinyglobby';

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
 * Existing files matching an absolute or relative `pattern`, as absolute paths, sorted; a missing
 * directory matches nothing. Directories are not matched.
 */
export async function expandGlob(pattern: string): Promise<string[]> {
  const found = await glob(pattern, { absolute: true, onlyFiles: true, expandDirectories: false });
  return found.sort();
}
