// Where a running daemon listens, found without parsing YAML: `uplinkd status`, `hook`, `reload` and
// `down` need only the control socket, and loading the YAML parser is most of their time
// (docs/benchmarks.md). The record, not the file, is the authority on that socket: the daemon keeps
// listening where it started even when the file is edited (another paths.control_socket) or broken
// since, so the CLI must find it from the record whatever the file says now.
//
// The daemon writes a record after each load it adopts (start, reload), keyed by the file's real
// path: the adopted text and the socket it listens on. The CLI asks the daemon at that socket whether
// it runs this file (status: configRealPath) before trusting it, and compares the text to tell the
// user that the file changed since it was adopted. Records live in the runtime directory
// ($UPLINKD_RUNTIME_DIR, default /run/uplinkd: the unit's RuntimeDirectory, 0700 root; records 0600)
// and are removed by the daemon that wrote them when it stops; a stale one (kill -9) only costs a
// failed connect, after which the CLI parses the file as before.
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, statSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { MAX_CONFIG_BYTES } from '../system/regular-file';
import { runtimeDir } from '../system/runtime-dir';

export { runtimeDir } from '../system/runtime-dir';

/** package.json's version (dist/src/daemon -> the package root); 'unknown' when unreadable. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What a record holds (JSON, one file per configuration file). */
export interface SocketRecord {
  /** Real path (realpath(3)) of the configuration file. */
  file: string;
  /**
   * The text the daemon adopted: the file's bytes decoded as UTF-8, exactly what the parser reads.
   * Compared whole: no hash to trust, and node:crypto would cost the CLI more than the comparison.
   */
  text: string;
  /** The socket the daemon listens on: paths.control_socket of the configuration it started with. */
  controlSocket: string;
  /** pid of the daemon that wrote it (for people reading the directory, and removal by its writer). */
  pid: number;
  /** The absolute name the daemon was started with (`-c`, symlinks not followed): found by it when `file` is not. */
  name?: string;
}

/**
 * The record's path for a configuration file's real path: `DIR/config/<real path, URI-encoded>.json`
 * (e.g. `%2Fetc%2Fuplinkd%2Fuplinkd.yaml.json`). A path whose encoding exceeds NAME_MAX (255 bytes)
 * gets no record (ENAMETOOLONG on writing): its CLI parses the file.
 */
export function recordPath(dir: string, realFile: string): string {
  return path.join(dir, 'config', `${encodeURIComponent(realFile)}.json`);
}

/** Temporary files written by this process so far: each write's own name. */
let writes = 0;

/**
 * Records that the daemon listening on `controlSocket` adopted `bytes`, read from `file`. Written to a temporary file (0600, directories 0700) then renamed, so a reader
 * never sees half a record. Returns the record's path (for removeSocketRecord). Throws the
 * fs error (e.g. EACCES, ENAMETOOLONG) when it cannot be written; callers treat that as "no record".
 */
export async function writeSocketRecord(file: string, bytes: Buffer, controlSocket: string, dir = runtimeDir()): Promise<string> {
  const realFile = await fs.realpath(file);
  const target = recordPath(dir, realFile);
  const record: SocketRecord = { file: realFile, text: bytes.toString('utf8'), controlSocket, pid: process.pid, name: path.resolve(file) };
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  // Unique per write: two reloads of one daemon may write at once (a shared name made one rename fail).
  const tmp = `${target}.${process.pid}.${++writes}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  await fs.rename(tmp, target);
  return target;
}

/** Removes a record written by this process (ENOENT tolerated; another daemon's record is left alone). */
export async function removeSocketRecord(target: string): Promise<void> {
  try {
    const record = JSON.parse(await fs.readFile(target, 'utf8')) as Partial<SocketRecord>;
    if (record.pid !== process.pid) return;
    await fs.unlink(target);
  } catch {
    // gone already, or not ours to judge
  }
}

/** What findSocketRecord found for a configuration file. */
export interface FoundRecord {
  /** Where the daemon that adopted the file listens (its paths.control_socket when it started). */
  controlSocket: string;
  /** The file's real path (the record's key; the daemon's status names it as configRealPath). */
  file: string;
  /** The file now holds exactly the text the daemon adopted (false: edited, unreadable, not a regular file). */
  sameText: boolean;
}

/**
 * The record of the daemon that adopted the configuration file `file` (any name of it: relative,
 * symlink), whatever the file says now: the record, not the file, knows where that daemon listens,
 * so a file edited or broken since does not cut the CLI off from the daemon. undefined when there is
 * no well-formed record for the file's real path (the caller then parses the file). The caller must
 * still ask the daemon at `controlSocket` whether it runs this file (a record left by kill -9 names a
 * socket nobody answers on, or another daemon's). Never throws. Synchronous on purpose: the first
 * asynchronous fs call starts libuv's thread pool, which costs more than these few reads.
 */
export function findSocketRecord(file: string, dir = runtimeDir()): FoundRecord | undefined {
  const found = lastRealPaths(file).map((realFile) => readRecord(dir, realFile)).find((r) => r !== undefined) ?? recordByName(dir, path.resolve(file));
  if (found === undefined) return undefined;
  let bytes: Buffer | undefined;
  try {
    bytes = regularFileBytes(file);
  } catch {
    bytes = undefined;
  }
  return { controlSocket: found.controlSocket, file: found.file, sameText: bytes !== undefined && found.text === bytes.toString('utf8') };
}

/** The well-formed record stored for `realFile` (its name in `dir` and its `file` agree), else undefined. */
function readRecord(dir: string, realFile: string): SocketRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(recordPath(dir, realFile), 'utf8')) as Partial<SocketRecord>;
    if (record.file !== realFile || typeof record.controlSocket !== 'string' || typeof record.text !== 'string') return undefined;
    return record as SocketRecord;
  } catch {
    return undefined;
  }
}

/**
 * The record of a daemon started with the absolute name `name` whose file is not where the name leads now (a symlink
 * re-pointed or replaced since): the newest such record (mtime), else undefined. Reads the few records in `dir`.
 */
function recordByName(dir: string, name: string): SocketRecord | undefined {
  let entries: string[];
  try {
    entries = readdirSync(path.join(dir, 'config')).filter((e) => e.endsWith('.json'));
  } catch {
    return undefined;
  }
  let best: { record: SocketRecord; mtime: number } | undefined;
  for (const entry of entries) {
    const realFile = decodeURIComponentSafe(entry.slice(0, -'.json'.length));
    const record = realFile === undefined ? undefined : readRecord(dir, realFile);
    if (record === undefined || record.name !== name) continue;
    let mtime = 0;
    try {
      mtime = statSync(recordPath(dir, realFile!)).mtimeMs;
    } catch {
      continue;
    }
    if (best === undefined || mtime > best.mtime) best = { record, mtime };
  }
  return best?.record;
}

function decodeURIComponentSafe(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * The real paths `file` may have had when a daemon adopted it, most likely first: realpath(3) of `file` when it
 * resolves; else (ENOENT: deleted, renamed, a symlink to nothing; ELOOP: a symlink loop) each name along its symlink
 * chain that does not resolve, as its directory's real path plus its own name, the chain's end first (the file a
 * symlink pointed at and that was removed), then the names that led there (the path given, now a dangling symlink
 * or a loop). So a daemon whose file was removed or replaced stays reachable through its record. Empty when not even
 * a directory resolves.
 */
export function lastRealPaths(file: string): string[] {
  try {
    // realpath(3) in one call, as the daemon's fs.promises.realpath that keyed the record; the JavaScript
    // realpathSync lstat()s every component of the path.
    return [realpathSync.native(file)];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ELOOP') return [];
  }
  const names: string[] = [];
  const seen = new Set<string>();
  // 40: Linux's MAXSYMLINKS; a loop stops at the first name seen twice.
  for (let name: string | undefined = path.resolve(file); name !== undefined && names.length < 40 && !seen.has(name);) {
    seen.add(name);
    try {
      names.push(path.join(realpathSync.native(path.dirname(name)), path.basename(name)));
    } catch {
      // its directory is gone too: no daemon can have adopted it under this name
    }
    let target: string | undefined;
    try {
      target = readlinkSync(name);
    } catch {
      // not a symlink: the chain ends here
    }
    name = target === undefined ? undefined : path.resolve(path.dirname(name), target);
  }
  return [...new Set(names.reverse())];
}

/**
 * The bytes of `file` when it is a regular file of at most MAX_CONFIG_BYTES, else undefined. Opened
 * O_NONBLOCK like src/system/regular-file.ts, so a FIFO at the path cannot hang the CLI; what is
 * checked (fstat) is what is read.
 */
function regularFileBytes(file: string): Buffer | undefined {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let total = 0;
    for (let n; total < buffer.length && (n = readSync(fd, buffer, total, buffer.length - total, null)) > 0;) total += n;
    return total <= MAX_CONFIG_BYTES ? buffer.subarray(0, total) : undefined;
  } finally {
    closeSync(fd);
  }
}
