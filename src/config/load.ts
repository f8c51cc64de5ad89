// YAML configuration -> Config. Every problem is collected in one pass and reported as
// "FILE:LINE:COLUMN: FIELD: message" in a single UplinkdError('config').
import { isAbsolute } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { UplinkdError } from '../errors';
import { escapeControl } from '../log';
import { MAX_CONFIG_BYTES, readRegularFileStat } from '../system/regular-file';
import { assignTables, checkGateways, checkUplinkSet, type LanEntry } from './cross';
import { DEFAULTS } from './defaults';
import { readHttp } from './http';
import { readExec, readPolicies } from './policies';
import { isEmpty, Reader, type Field, type Problem } from './reader';
import type { Config, DefaultMode } from './types';
import { MAX_TABLE, readIfname, readUplink, type UplinkDraft } from './uplinks';
import { stableSlots } from './identity';
import { markMaskProblem, markShift, RESERVED_PROTOCOLS, RESERVED_TABLES, quoted } from './values';

const TOP_KEYS = [
  'uplinks', 'lan', 'default', 'table_base', 'rule_priority', 'protocol', 'resilient', 'multipath_hash', 'pinning', 'paths', 'daemon', 'http',
  'policies', 'exec',
];
const PINNING_KEYS = ['enabled', 'mark_mask'];
const RESILIENT_KEYS = ['buckets', 'idle_timer', 'unbalanced_timer'];
const PATH_KEYS = ['rt_tables', 'rt_protos', 'leases', 'control_socket', 'hooks_dir'];
const DAEMON_KEYS = ['resync_interval', 'debounce'];
const DEFAULT_MODES: readonly DefaultMode[] = ['balance', 'failover'];
/** Rules outside the band: 0 is `local`, 32766 `main`, 32767 `default`. */
const RULE_BAND = { first: 1, last: 32765, size: 1000 };

/** What a configuration is checked against besides itself. */
export interface CheckFacts {
  /** This router's IPv4 addresses (address -> device), from the kernel: a static gateway must not be one (checkGateways). */
  localAddresses?: ReadonlyMap<string, string>;
}

/**
 * Parses and validates configuration text; `file` is only used in messages and Config.file. With `facts` (`uplinkd
 * check`, which reads the kernel) also against them. Throws UplinkdError('config') listing every problem.
 */
export function parseConfig(text: string, file: string, facts: CheckFacts = {}): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const r = new Reader(file, doc, lines);
  for (const e of doc.errors) r.reportAt(e.pos[0], `YAML syntax: ${e.message}`);
  // Field checks on a document with syntax errors would only add noise.
  const config = doc.errors.length === 0 ? readConfig(r, facts) : undefined;
  if (config && r.problems.length === 0) return config;
  throw configError(r.problems);
}

/**
 * Reads and parses the configuration file; an unreadable file (missing, not a regular file such
 * as a FIFO or a directory, over MAX_CONFIG_BYTES) is UplinkdError('config') naming the file and
 * what was expected. Never blocks on a FIFO (readRegularFileStat).
 */
export async function loadConfig(file: string, facts: CheckFacts = {}): Promise<Config> {
  return (await loadConfigBytes(file, 0, facts)).config;
}

/**
 * loadConfig, also giving the bytes it parsed (what a daemon adopting the config adopted). `settleMs`
 * (the daemon's): wait for a writer to finish, see settledBytes. Errors as loadConfig.
 */
export async function loadConfigBytes(file: string, settleMs = 0, facts: CheckFacts = {}): Promise<{ config: Config; bytes: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await settledBytes(file, settleMs);
  } catch (e) {
    const err = e as UplinkdError;
    const why = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
    throw new UplinkdError('config', escapeControl(`${file}: cannot read the configuration: ${why}`), {
      errno: err.detail?.errno, cause: e, location: { file, line: 0, column: 0, field: '' },
    });
  }
  return { config: parseConfig(bytes.toString('utf8'), file, facts), bytes };
}

/** Reads of a file still being written, at most (then its last bytes are taken, whatever they are). */
const SETTLE_READS = 10;

/**
 * The file's bytes once a writer is done with it: a file modified less than `settleMs` ms ago is read
 * again `settleMs` ms later until two reads agree (at most SETTLE_READS), so that a reload sent while
 * a tool writes the file in place (`cat > file`, `cp`) does not adopt half of it. settleMs 0: one read.
 */
async function settledBytes(file: string, settleMs: number): Promise<Buffer> {
  let { bytes, stat } = await readRegularFileStat(file, MAX_CONFIG_BYTES);
  for (let reads = 1; settleMs > 0 && reads < SETTLE_READS && Date.now() - stat.mtimeMs < settleMs; reads++) {
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const again = await readRegularFileStat(file, MAX_CONFIG_BYTES);
    const same = again.bytes.equals(bytes);
    ({ bytes, stat } = again);
    if (same) break;
  }
  return bytes;
}

/** The text the CLI prints for a configuration error: a count, then one line per problem. */
export function describeConfigError(err: UplinkdError): string {
  const problems = Array.isArray(err.detail.cause) ? err.detail.cause.length : 1;
  if (err.code !== 'config' || problems <= 1) return `invalid configuration: ${err.message}`;
  return `invalid configuration (${problems} problems):\n${err.message}`;
}

function configError(unsorted: Problem[]): UplinkdError {
  // File order reads best, whatever order the checks ran in (sort is stable for equal positions).
  const problems = [...unsorted].sort((a, b) =>
    a.location.line - b.location.line || a.location.column - b.location.column);
  const lines = problems.map(({ location: l, message }) =>
    `${escapeControl(l.file)}:${l.line}:${l.column}: ${l.field ? `${l.field}: ` : ''}${message}`);
  // detail.cause carries every problem for callers that want them all (tests, editors).
  return new UplinkdError('config', lines.join('\n'), { location: problems[0]?.location, cause: problems });
}

function readConfig(r: Reader, facts: CheckFacts): Config | undefined {
  const root = r.root();
  if (isEmpty(root)) {
    r.report(root.at, 'uplinks', 'missing (the file is empty; expected at least an uplinks: list)');
    return undefined;
  }
  const top = r.map(root, TOP_KEYS);
  if (!top) return undefined;
  const opt = (key: string) => top.get(key);

  const config: Config = {
    file: r.file,
    uplinks: [],
    lan: [],
    default: DEFAULTS.default,
    tableBase: DEFAULTS.tableBase,
    rulePriority: DEFAULTS.rulePriority,
    protocol: DEFAULTS.protocol,
    resilient: { ...DEFAULTS.resilient },
    pinning: { ...DEFAULTS.pinning },
    paths: { ...DEFAULTS.paths, leases: [...DEFAULTS.paths.leases] },
    daemon: { ...DEFAULTS.daemon },
  };

  const mode = opt('default');
  if (mode) config.default = r.oneOf(mode, DEFAULT_MODES) ?? config.default;
  const tableBase = opt('table_base');
  if (tableBase) config.tableBase = readTableBase(r, tableBase) ?? config.tableBase;
  const rulePriority = opt('rule_priority');
  if (rulePriority) config.rulePriority = r.number(rulePriority, RULE_BAND.first, RULE_BAND.last - RULE_BAND.size + 1)
    ?? config.rulePriority;
  const protocol = opt('protocol');
  if (protocol) config.protocol = readProtocol(r, protocol) ?? config.protocol;
  const hash = opt('multipath_hash');
  if (hash) {
    const mode = r.oneOf(hash, ['l3', 'l4'] as const);
    if (mode) config.multipathHash = mode;
  }

  const lan: LanEntry[] = [];
  const lanField = opt('lan');
  for (const item of (lanField && r.seq(lanField, 'interface names')) ?? []) {
    const name = readIfname(r, item);
    if (name !== undefined) lan.push({ name, field: item });
  }
  config.lan = lan.map((l) => l.name);

  const drafts: UplinkDraft[] = [];
  const uplinksField = r.required(root, top, 'uplinks', 'a list of uplinks with name and interface');
  const uplinkItems = uplinksField && r.seq(uplinksField, 'uplinks');
  if (uplinksField && uplinkItems?.length === 0)
    r.report(uplinksField.at, uplinksField.path, 'the list is empty (expected at least one uplink)');
  for (const item of uplinkItems ?? []) {
    const draft = readUplink(r, item);
    if (draft) drafts.push(draft);
  }
  checkUplinkSet(r, drafts, lan);
  checkGateways(r, drafts, facts.localAddresses);
  const tables = assignTables(r, drafts, config.tableBase);
  config.uplinks = drafts.map((d, i) => ({
    name: d.name ?? '',
    interface: d.interface ?? '',
    dhcp: d.dhcp,
    ...(d.address && { address: d.address }),
    ...(d.peer && { peer: d.peer }),
    ...(d.gateway && { gateway: d.gateway }),
    weight: d.weight,
    tier: d.tier,
    table: tables[i],
    markIndex: 0, // set below, once the mark mask is known
    ...(d.monitor && { monitor: d.monitor }),
  }));

  readPolicies(r, opt('policies'), drafts, config);
  const exec = opt('exec');
  if (exec) readExec(r, exec, config);

  const pinning = opt('pinning');
  if (pinning) readPinning(r, pinning, config);
  // Timers the file does not set follow from pinning (config/defaults.ts says why).
  assignMarks(config);
  if (!config.pinning!.enabled) config.resilient = { ...config.resilient, ...DEFAULTS.resilientUnpinned };
  const resilient = opt('resilient');
  const buckets = resilient && readResilient(r, resilient, config);
  if (config.resilient.buckets < drafts.length) {
    r.report(buckets ? buckets.at : uplinksField?.at, 'resilient.buckets',
      `${config.resilient.buckets} buckets cannot hold ${drafts.length} uplinks (expected at least ${drafts.length})`);
  }
  const paths = opt('paths');
  if (paths) readPaths(r, paths, config);
  const daemon = opt('daemon');
  if (daemon) readDaemon(r, daemon, config);
  const httpField = opt('http');
  const http = httpField && readHttp(r, httpField);
  if (http) config.http = http;
  return config;
}

/** Each uplink's pinning mark index, from its name within the mask's run of bits (src/config/identity.ts). */
function assignMarks(config: Config): void {
  const mask = config.pinning!.markMask;
  const marks = stableSlots([...new Set(config.uplinks.map((u) => u.name))], mask >>> markShift(mask));
  for (const u of config.uplinks) u.markIndex = marks.get(u.name) ?? 0;
}

function readTableBase(r: Reader, f: Field): number | undefined {
  const n = r.number(f, 1, MAX_TABLE - 1);
  const reserved = n === undefined ? undefined : RESERVED_TABLES.get(n);
  if (reserved) {
    r.report(f.at, f.path, `${n} is the kernel's ${quoted(reserved)} table (expected another table number, e.g. 1000)`);
    return undefined;
  }
  return n;
}

function readProtocol(r: Reader, f: Field): number | undefined {
  const n = r.number(f, 5, 254);
  const owner = n === undefined ? undefined : RESERVED_PROTOCOLS.get(n);
  if (owner) {
    r.report(f.at, f.path,
      `${n} is the protocol of ${owner}; uplinkd would take over those routes (expected an unused number, e.g. 117)`);
    return undefined;
  }
  return n;
}

/** Returns the `buckets` field, for the check against the number of uplinks. */
function readResilient(r: Reader, f: Field, config: Config): Field | undefined {
  const fields = r.map(f, RESILIENT_KEYS);
  if (!fields) return undefined;
  const buckets = fields.get('buckets');
  // NHA_RES_GROUP_BUCKETS is a u16; timers are seconds, kept far inside the kernel's clock_t range.
  if (buckets) config.resilient.buckets = r.number(buckets, 1, 65535) ?? config.resilient.buckets;
  const idle = fields.get('idle_timer');
  if (idle) config.resilient.idleTimer = r.number(idle, 0, 86400) ?? config.resilient.idleTimer;
  const unbalanced = fields.get('unbalanced_timer');
  if (unbalanced) config.resilient.unbalancedTimer = r.number(unbalanced, 0, 86400) ?? config.resilient.unbalancedTimer;
  return buckets;
}

function readPinning(r: Reader, f: Field, config: Config): void {
  const fields = r.map(f, PINNING_KEYS);
  if (!fields) return;
  const pinning = config.pinning!;
  const enabled = fields.get('enabled');
  if (enabled) pinning.enabled = r.bool(enabled) ?? pinning.enabled;
  const maskField = fields.get('mark_mask');
  const mask = maskField && r.number(maskField, 1, 0xffffffff);
  if (!maskField || mask === undefined) return;
  const problem = markMaskProblem(mask, config.uplinks.length);
  if (problem) r.report(maskField.at, maskField.path, problem);
  else pinning.markMask = mask;
}

function readPaths(r: Reader, f: Field, config: Config): void {
  const fields = r.map(f, PATH_KEYS);
  if (!fields) return;
  const path = (key: string): string | undefined => {
    const field = fields.get(key);
    const value = field && r.string(field, 'an absolute path');
    if (field && value !== undefined && !isAbsolute(value)) {
      r.report(field.at, field.path, `${quoted(value)} is relative (expected an absolute path)`);
      return undefined;
    }
    return value;
  };
  config.paths.rtTables = path('rt_tables') ?? config.paths.rtTables;
  config.paths.rtProtos = path('rt_protos') ?? config.paths.rtProtos;
  config.paths.controlSocket = path('control_socket') ?? config.paths.controlSocket;
  config.paths.hooksDir = path('hooks_dir') ?? config.paths.hooksDir;
  const leases = fields.get('leases');
  const items = leases && r.seq(leases, 'lease file globs');
  if (items) {
    config.paths.leases = [];
    for (const item of items) {
      const glob = r.string(item, 'a lease file glob');
      if (glob !== undefined) config.paths.leases.push(glob);
    }
  }
}

function readDaemon(r: Reader, f: Field, config: Config): void {
  const fields = r.map(f, DAEMON_KEYS);
  if (!fields) return;
  const resync = fields.get('resync_interval');
  if (resync) config.daemon.resyncMs = r.duration(resync, 1000) ?? config.daemon.resyncMs;
  const debounce = fields.get('debounce');
  if (debounce) config.daemon.debounceMs = r.duration(debounce, 0) ?? config.daemon.debounceMs;
}
