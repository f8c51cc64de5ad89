// Reading files whose path an admin or another program chooses (the config, lease files,
// iproute2 name files) without ever blocking: a FIFO at the path would hang a plain open(2)
// in Node's thread pool until a writer came, and /dev/zero would never reach end of file.
import { constants, promises as fs, type Stats } from 'node:fs';
import { UplinkdError } from '../errors';

/** Largest configuration file read, bytes (a real one is a few KiB). */
export const MAX_CONFIG_BYTES = 1 << 20;
/** Largest lease or iproute2 name file read, bytes (a dhclient database of years of leases stays far below). */
export const MAX_STATE_BYTES = 4 << 20;

/** The kind of a non-regular file, as ls(1) and stat(2)'s S_IFMT would name it. */
function fileKind(stat: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * The bytes of the regular file `file`, at most `maxBytes` of them. Opens with O_NONBLOCK
 * (open(2): a FIFO opened for reading returns at once instead of waiting for a writer) and
 * O_NOCTTY, then fstat(2)s the descriptor, so what is checked is what is read (no race with a
 * rename). The size is bounded by reading, not by st_size, which is 0 for /proc and sysfs files.
 *
 * Throws UplinkdError('io') whose message is `FILE: REASON`, REASON one of "no such file",
 * "permission denied", "is a FIFO (named pipe), expected a regular file" (likewise a directory,
 * socket or device), "larger than N bytes, expected at most N"; detail.errno carries the errno
 * name when the system refused (EISDIR for a directory).
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  return (await readRegularFileStat(file, maxBytes)).bytes;
}

/** readRegularFile with the descriptor's fstat(2) (mtime of exactly what was read). */
export async function readRegularFileStat(file: string, maxBytes: number): Promise<{ bytes: Buffer; stat: Stats }> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    const why = errno === 'ENOENT' ? 'no such file' : errno === 'EACCES' ? 'permission denied'
      : errno === 'ENXIO' ? 'is a socket or a device without a reader, expected a regular file' : (err as Error).message;
    throw new UplinkdError('io', `${file}: ${why}`, { errno, cause: err });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      // EISDIR for a directory, as read(2) would fail: callers that list directories may skip it.
      throw new UplinkdError('io', `${file}: is ${fileKind(stat)}, expected a regular file`, stat.isDirectory() ? { errno: 'EISDIR' } : {});
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // One byte past the limit tells "exactly maxBytes" from "more".
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw new UplinkdError('io', `${file}: larger than ${maxBytes} bytes, expected at most ${maxBytes}`);
    }
    return { bytes: Buffer.concat(chunks, total), stat };
  } catch (err) {
    if (err instanceof UplinkdError) throw err;
    const errno = (err as NodeJS.ErrnoException).code;
    throw new UplinkdError('io', `${file}: ${errno === 'EISDIR' ? 'is a directory, expected a regular file' : (err as Error).message}`, { errno, cause: err });
  } finally {
    await handle.close();
  }
}
