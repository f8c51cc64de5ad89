// Structured logs: one logfmt line per event, e.g.
//   ts=2024-05-01T10:00:00.000Z level=info event=apply change="ip rule add ..." cause="address ... added on if2"
// Lines go to a sink (stderr by default, so journald picks them up); tests inject an array sink.

/** Log levels, lowest first; a logger writes its level and above. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogValue = string | number | boolean | undefined | null;
export type LogFields = Record<string, LogValue>;

/**
 * Writes one logfmt line per call: `event` names what happened, `fields` the details (undefined/null fields are left out).
 */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/** Where formatted lines go, one call per line without the newline. */
export type LogSink = (line: string) => void;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** True when `text` is a LogLevel name (the UPLINKD_LOG_LEVEL environment variable). */
export function isLogLevel(text: string): text is LogLevel {
  return Object.prototype.hasOwnProperty.call(RANK, text);
}

/**
 * Characters a terminal or log viewer acts on instead of showing: C0 controls, DEL, C1 controls
 * (ECMA-48: ESC, CSI, OSC start escape sequences), the Unicode line and paragraph separators, the
 * bidirectional formatting characters ("Trojan Source", CVE-2021-42574) and the BOM.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/**
 * `text` with every control or formatting character (UNSAFE) written as an escape: \n \r \t,
 * \xHH below U+0100, else \uXXXX; characters in `keep` (e.g. '\n' for multi-line CLI errors)
 * stay. Backslashes are left alone: for display, not a reversible encoding (formatValue is).
 */
export function escapeControl(text: string, keep = ''): string {
  return text.replace(UNSAFE, (c) => (keep.includes(c) ? c : escapeChar(c)));
}

/**
 * A logfmt value: bare when it is a plain token, else double-quoted with \\ and \" escaped and
 * every control or formatting character escaped as in escapeControl (parseLine reverses it), so a
 * log line is always one line of plain characters whatever bytes a file held.
 */
export function formatValue(value: Exclude<LogValue, undefined | null>): string {
  const text = String(value);
  if (text !== '' && /^[A-Za-z0-9_.:/@+\-,]+$/.test(text)) return text;
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(UNSAFE, escapeChar)}"`;
}

/**
 * One logfmt line: `ts=` (ISO 8601 UTC from `ts`, milliseconds since the epoch), `level=`, `event=`, then the fields
 * in insertion order, values quoted by formatValue(); undefined and null fields are left out.
 */
export function formatLine(ts: number, level: LogLevel, event: string, fields: LogFields = {}): string {
  const parts = [`ts=${new Date(ts).toISOString()}`, `level=${level}`, `event=${formatValue(event)}`];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.join(' ');
}

let unwritten: string[] = [];

function writeUnwritten(): void {
  if (unwritten.length === 0) return;
  const text = unwritten.join('');
  unwritten = [];
  process.stderr.write(text);
}

/**
 * The default sink: standard error, the lines of one synchronous stretch written together once it ends (a
 * cycle logs a line per change; stderr to a pipe is a write(2) per call). Written at exit too.
 */
function stderrSink(line: string): void {
  if (unwritten.length === 0) {
    if (!exitHooked) process.once('exit', writeUnwritten);
    exitHooked = true;
    queueMicrotask(writeUnwritten);
  }
  unwritten.push(line + '\n');
}
let exitHooked = false;

export interface LoggerOptions {
  /** Lowest level written; default info (UPLINKD_LOG_LEVEL may override in runDaemon). */
  level?: LogLevel;
  sink?: LogSink;
  now?: () => number;
}

/**
 * A Logger writing formatLine() lines at or above `options.level` (default info) to `options.sink` (default stderr,
 * which journald collects), stamped with `options.now()` (milliseconds since the epoch, default Date.now).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const sink = options.sink ?? stderrSink;
  const now = options.now ?? Date.now;
  const write = (level: LogLevel) => (event: string, fields?: LogFields) => {
    if (RANK[level] >= min) sink(formatLine(now(), level, event, fields));
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Parses one logfmt line back into fields (for tests and `status` tooling). */
export function parseLine(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_.-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    out[m[1]] = m[2] !== undefined ? unescapeValue(m[2]) : m[3];
  }
  return out;
}

const UNESCAPED: Record<string, string> = { n: '\n', r: '\r', t: '\t' };

/** The inverse of formatValue's escapes inside double quotes. */
function unescapeValue(quoted: string): string {
  return quoted.replace(/\\(x[0-9a-f]{2}|u[0-9a-f]{4}|.)/g, (_, e: string) =>
    e.length > 1 ? String.fromCharCode(parseInt(e.slice(1), 16)) : UNESCAPED[e] ?? e);
}

/** The clock rateLimited reads: now() in epoch ms, and a timer (the default's is unref'd). */
export interface RateClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
}

const REAL_CLOCK: RateClock = { now: Date.now, setTimeout: (fn, ms) => setTimeout(fn, ms).unref() };

/**
 * One kind of line that can come in floods (netlink overruns during a route flush, datagrams from a
 * foreign process): `write` runs for the first call, then at most once per `windowMs` milliseconds;
 * the calls held back in between are counted, and when the window ends one more line goes out with
 * the last fields and `suppressed=N` (how many were held back). With the default clock a pending
 * summary never keeps the process alive.
 */
export function rateLimited(write: (fields: LogFields) => void, windowMs: number, clock: RateClock = REAL_CLOCK): (fields: LogFields) => void {
  let until = 0;
  let held = 0;
  let last: LogFields = {};
  const endWindow = (): void => {
    if (held === 0) {
      until = 0;
      return;
    }
    write({ ...last, suppressed: held });
    held = 0;
    until = clock.now() + windowMs;
    clock.setTimeout(endWindow, windowMs);
  };
  return (fields) => {
    if (clock.now() < until) {
      held++;
      last = fields;
      return;
    }
    write(fields);
    until = clock.now() + windowMs;
    clock.setTimeout(endWindow, windowMs);
  };
}
