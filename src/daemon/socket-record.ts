// Where a running daemon listens, found without parsing YAML: `uplinkd status`, `hook` and `reload`
// need only the control socket, and loading the YAML parser is most of their time (docs/benchmarks.md).
//
// A record is a memo of one fact the real parser established: "this text parses, with this parser,
// to a valid configuration whose paths.control_socket is S". The daemon writes one after each load
// it adopts (start, reload), keyed by the file's real path; the CLI uses S only when the file's text
// now is the recorded text and the parser is its own (version and compiled files: parserIdentity),
// so S is exactly what parsing the file now would give (the parser reads nothing but the text:
// src/config/load.ts), and a file that no longer parses or names another socket never matches: the
// CLI then parses it as before (same errors, same exit codes). Records live in the runtime directory
// ($UPLINKD_RUNTIME_DIR, default /run/uplinkd: the unit's RuntimeDirectory, 0700 root) and are removed
// when the daemon stops; a stale one (kill -9) only costs a failed connect, after which the CLI
// parses the file as before.
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { MAX_CONFIG_BYTES } from '../system/regular-file';

/** The runtime directory: $UPLINKD_RUNTIME_DIR when set (tests, labs), else /run/uplinkd. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.UPLINKD_RUNTIME_DIR;
  return dir !== undefined && path.isAbsolute(dir) ? dir : '/run/uplinkd';
}

/** package.json's version (dist/src/daemon -> the package root); 'unknown' when unreadable. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Which parser this is: the package version, and the size and mtime (ms) of each compiled file of
 * src/config (`load.js:12345:1764540000000 ...`), so that a rebuilt parser in a checkout (same
 * version) does not trust a record its predecessor wrote. Taken once, when this module loads: a
 * daemon (which loads it at start, with the parser) keeps naming the parser it runs even if the
 * files are rebuilt under it. 'unknown' for the files when they cannot be listed.
 */
export function parserIdentity(): string {
  return PARSER;
}

function currentParser(): string {
  let files: string;
  try {
    const dir = path.join(__dirname, '..', 'config');
    files = readdirSync(dir).filter((f) => f.endsWith('.js') && !f.endsWith('.test.js')).sort()
      .map((f) => {
        const st = statSync(path.join(dir, f));
        return `${f}:${st.size}:${st.mtimeMs}`;
      }).join(' ');
  } catch {
    files = 'unknown';
  }
  return `${packageVersion()} ${files}`;
}

const PARSER = currentParser();

/** What a record holds (JSON, one file per configuration file). */
export interface SocketRecord {
  /** parserIdentity() of the daemon that parsed the file. */
  parser: string;
  /** Real path (realpath(3)) of the configuration file. */
  file: string;
  /**
   * The text that parsed: the file's bytes decoded as UTF-8, exactly what the parser reads (so two
   * files that decode to the same text parse the same). Compared whole: no hash to trust, and
   * node:crypto would cost the CLI more than the comparison.
   */
  text: string;
  /** paths.control_socket as the parser resolved it (default included). */
  controlSocket: string;
  /** pid of the daemon that wrote it (for people reading the directory, and removal by its writer). */
  pid: number;
}

/**
 * The record's path for a configuration file's real path: `DIR/config/<real path, URI-encoded>.json`
 * (e.g. `%2Fetc%2Fuplinkd%2Fuplinkd.yaml.json`). A path whose encoding exceeds NAME_MAX (255 bytes)
 * gets no record (ENAMETOOLONG on writing): its CLI parses the file.
 */
export function recordPath(dir: string, realFile: string): string {
  return path.join(dir, 'config', `${encodeURIComponent(realFile)}.json`);
}

/**
 * Records that `bytes`, read from `file`, parsed to a valid configuration with control socket
 * `controlSocket`. Written to a temporary file (0600, directories 0700) then renamed, so a reader
 * never sees half a record. Returns the record's path (for removeSocketRecord). Throws the
 * fs error (e.g. EACCES, ENAMETOOLONG) when it cannot be written; callers treat that as "no record".
 */
export async function writeSocketRecord(file: string, bytes: Buffer, controlSocket: string, dir = runtimeDir()): Promise<string> {
  const realFile = await fs.realpath(file);
  const target = recordPath(dir, realFile);
  const record: SocketRecord = { parser: parserIdentity(), file: realFile, text: bytes.toString('utf8'), controlSocket, pid: process.pid };
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  const tmp = `${target}.${process.pid}.tmp`;
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

/**
 * The control socket the configuration file `file` names, when a daemon's record proves it without
 * parsing: the record for the file's real path exists, was written by this same parser (parserIdentity)
 * and holds the file's current text. Otherwise (no record, another parser, the file changed,
 * unreadable, not a regular file, over MAX_CONFIG_BYTES) undefined: the caller parses the file as
 * usual, which also reports any configuration error. Never throws. Synchronous on purpose: the
 * first asynchronous fs call starts libuv's thread pool, which costs more than these few reads.
 */
export function recordedSocket(file: string, dir = runtimeDir()): string | undefined {
  try {
    const realFile = realpathSync(file);
    const record = JSON.parse(readFileSync(recordPath(dir, realFile), 'utf8')) as Partial<SocketRecord>;
    if (record.parser !== parserIdentity() || record.file !== realFile || typeof record.controlSocket !== 'string') return undefined;
    const bytes = regularFileBytes(file);
    return bytes !== undefined && record.text === bytes.toString('utf8') ? record.controlSocket : undefined;
  } catch {
    return undefined;
  }
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
