// Files uplinkd writes outside its own directories (iproute2 name files): marked by a
// header line so that `uplinkd down` removes only what uplinkd wrote, and written
// atomically so that `ip` never reads half a file.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../errors';
import { MAX_STATE_BYTES, readRegularFile } from './regular-file';

export const OWNED_HEADER = '# Managed by uplinkd; removed by `uplinkd down`.';

function ioError(message: string, err: unknown): UplinkdError {
  return new UplinkdError('io', `${message}: ${(err as Error).message}`, {
    errno: (err as NodeJS.ErrnoException).code,
    cause: err,
  });
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(file, MAX_STATE_BYTES)).toString('utf8');
  } catch (err) {
    if ((err as UplinkdError).detail?.errno === 'ENOENT') return undefined;
    throw new UplinkdError('io', `cannot read ${(err as Error).message}`, { errno: (err as UplinkdError).detail?.errno, cause: err });
  }
}

function isOwned(text: string): boolean {
  return text.split('\n', 1)[0] === OWNED_HEADER;
}

/**
 * Writes OWNED_HEADER + content to `file` via a temporary file and rename, creating the
 * directory. Returns false when the file already had exactly that content. Refuses
 * (UplinkdError 'io') to replace a file uplinkd did not write.
 */
export async function writeOwnedFile(file: string, content: string): Promise<boolean> {
  const text = `${OWNED_HEADER}\n${content}`;
  const existing = await readIfExists(file);
  if (existing === text) return false;
  if (existing !== undefined && !isOwned(existing)) {
    throw new UplinkdError('io', `${file} exists and was not written by uplinkd; not replacing it`);
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.uplinkd-${process.pid}.tmp`);
  try {
    // mkdir(recursive) returns the first directory it created: when that includes the file's own
    // directory, a marker records it so that removeOwnedFile removes it once empty, and never an admin's.
    const created = await fs.mkdir(path.dirname(file), { recursive: true });
    if (created !== undefined) await fs.writeFile(path.join(path.dirname(file), CREATED_MARKER), `${OWNED_HEADER}\n`);
    await fs.writeFile(tmp, text, { mode: 0o644 });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw ioError(`cannot write ${file}`, err);
  }
  return true;
}

/**
 * Removes `file` only if uplinkd wrote it; then its directory too when writeOwnedFile created it
 * (CREATED_MARKER) and nothing else is left in it. Directories above it are left alone.
 */
export async function removeOwnedFile(file: string): Promise<'removed' | 'absent' | 'foreign'> {
  const existing = await readIfExists(file);
  if (existing === undefined) return 'absent';
  if (!isOwned(existing)) return 'foreign';
  try {
    await fs.rm(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw ioError(`cannot remove ${file}`, err);
  }
  await removeCreatedDir(path.dirname(file));
  return 'removed';
}

/** Name of the marker file in a directory writeOwnedFile created (a dotfile: `ip` reads only *.conf). */
export const CREATED_MARKER = '.uplinkd-created';

async function removeCreatedDir(dir: string): Promise<void> {
  try {
    const entries = await fs.readdir(dir);
    if (entries.length !== 1 || entries[0] !== CREATED_MARKER) return;
    await fs.rm(path.join(dir, CREATED_MARKER));
    // rmdir(2), not rm -r: fails with ENOTEMPTY if an admin put a file there meanwhile.
    await fs.rmdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY') throw ioError(`cannot remove ${dir}`, err);
  }
}
