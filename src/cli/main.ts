// Each command loads what it needs when it runs (`await import`): `uplinkd status` (and `hook`,
// `reload`) with a daemon running need only the control socket, found from the daemon's socket
// record (src/daemon/socket-record.ts) without loading the YAML parser, the planner, netlink or nftables.
import type { Config } from '../config/types';
import type { CheckFacts } from '../config/load';
import type { KernelState } from '../model/types';
import type { StatusView } from '../daemon/control';
import { EXIT, UplinkdError } from '../errors';
import { escapeControl } from '../log';
import { jsonText, writeOut } from './output';
import { parseCommandArgs, type CommandSpec, type ParsedArgs } from './args';

const DEFAULT_CONFIG = '/etc/uplinkd/uplinkd.yaml';

/** Each command's own options (the usage text below); `lab up`/`lab down` are commands of their own. */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  check: { usage: 'uplinkd check [-c FILE]', valued: ['config'] },
  plan: { usage: 'uplinkd plan [-c FILE] [--format text|ip|json]', valued: ['config', 'format'] },
  apply: { usage: 'uplinkd apply [-c FILE]', valued: ['config'] },
  status: { usage: 'uplinkd status [-c FILE] [--json]', valued: ['config'], flags: ['json'] },
  down: { usage: 'uplinkd down [-c FILE] [--force]', valued: ['config'], flags: ['force'] },
  exec: { usage: 'uplinkd exec [-c FILE] UPLINK -- COMMAND [ARGS...]', valued: ['config'], positional: 1 },
  run: { usage: 'uplinkd run [-c FILE] [--cleanup]', valued: ['config'], flags: ['cleanup'] },
  reload: { usage: 'uplinkd reload [-c FILE]', valued: ['config'] },
  hook: { usage: 'uplinkd hook [-c FILE] [--cause TEXT]', valued: ['config', 'cause'] },
  'lab up': {
    usage: 'uplinkd lab up [--vlan] [--prefix P] [--isp1 static|dhcp] [--isp2 static|dhcp] [--client dhclient|dhcpcd|udhcpc|networkd] | uplinkd lab up --kernel full',
    valued: ['prefix', 'isp1', 'isp2', 'client', 'kernel'],
    flags: ['vlan'],
  },
  'lab down': { usage: 'uplinkd lab down [--prefix P]', valued: ['prefix'] },
  help: { usage: 'uplinkd help' },
  '--help': { usage: 'uplinkd --help' },
  '-h': { usage: 'uplinkd -h' },
  '--version': { usage: 'uplinkd --version' },
};

const USAGE = `usage: uplinkd <command> [options]

commands:
  check   [-c FILE]                         validate the configuration
  plan    [-c FILE] [--format text|ip|json] show what apply would change
  apply   [-c FILE]                         make the kernel match the configuration
  status  [-c FILE] [--json]                uplinks, addresses, gateways, tables, states
  down    [-c FILE] [--force]               remove everything uplinkd made (refused while its daemon runs)
  exec    [-c FILE] UPLINK -- COMMAND...    run a command whose traffic leaves through UPLINK
  run     [-c FILE] [--cleanup]             run the daemon (follows the kernel, DHCP, health)
  reload  [-c FILE]                         make the running daemon re-read its file
  hook    [-c FILE] [--cause TEXT]          nudge the running daemon to resync (for DHCP-client hooks)
  lab up [--vlan] [--prefix P] [--isp1 static|dhcp] [--isp2 static|dhcp] [--client dhclient|dhcpcd|udhcpc|networkd]
  lab up --kernel full                      the blog (VLAN) and PPPoE worlds in a user-mode Linux guest, with a shell
  lab down [--prefix P]
                                            the network-namespace lab

-c/--config FILE defaults to ${DEFAULT_CONFIG}. uplinkd --version prints the version.`;

/**
 * Runs one `uplinkd` command line (`argv` without node and the script) and returns the process exit code: EXIT.ok,
 * EXIT.invalid (2) for a bad command line or configuration (UplinkdError 'usage' or 'config'), EXIT.failure (1) for
 * anything else. Never throws: errors are printed to stderr, a configuration error as `file:line:column: field: ...`.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    // exec: everything after `--` is the command, never uplinkd's options.
    if (argv[0] === 'exec') return await execCommand(argv.slice(1));
    const args = parseCommandLine(argv);
    const configFile = typeof args.options.config === 'string' ? args.options.config : DEFAULT_CONFIG;
    switch (args.command) {
      case 'check':
        return await check(configFile);
      case 'plan':
        return await planCommand(configFile, formatOption(args.options.format));
      case 'apply':
        await requireNetAdmin('apply');
        return await applyCommand(configFile);
      case 'status':
        return await statusCommand(configFile, args.options.json === true);
      case 'down':
        await requireNetAdmin('down');
        return await downCommand(configFile, args.options.force === true);
      case 'run': {
        await requireNetAdmin('run');
        const { runDaemon } = await import('../daemon/run');
        return await runDaemon({ configFile, cleanupOnExit: args.options.cleanup === true });
      }
      case 'reload': {
        const { queryDaemon, defaultTransport } = await import('../daemon/control-client');
        // The daemon parses: a rejected file is its answer (UplinkdError 'config', exit 2), and it logs it.
        const answer = await queryDaemon(await controlSocket(configFile, args.options.config !== undefined), { cmd: 'reload' }, 30_000, defaultTransport());
        const { reloadReport } = await import('./reload-answer');
        const report = reloadReport(answer);
        for (const note of report.warnings) warn(note);
        console.log(report.line);
        return report.exit;
      }
      case 'hook': {
        // A DHCP client's hook: ask the daemon for a resync now, without waiting long, even when the file is broken.
        const socket = await controlSocket(configFile, args.options.config !== undefined);
        const { queryDaemon, defaultTransport } = await import('../daemon/control-client');
        const cause = typeof args.options.cause === 'string' ? args.options.cause : hookCause();
        await queryDaemon(socket, { cmd: 'resync', cause }, 5_000, defaultTransport());
        return EXIT.ok;
      }
      case 'lab up':
      case 'lab down':
        return await labCommand(args.command, args.options);
      case '--version': {
        const { packageVersion } = await import('../daemon/socket-record');
        console.log(`uplinkd ${packageVersion()}`);
        return EXIT.ok;
      }
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return EXIT.ok;
      default:
        throw new UplinkdError('usage', `unknown command '${args.command}'\n${USAGE}`);
    }
  } catch (err) {
    return reportError(err);
  }
}

/**
 * `argv` (after `uplinkd`) checked against its command's spec. Errors: UplinkdError('usage') for an
 * unknown command or `lab` action, or an option or argument the command does not take.
 */
export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  if (argv.length === 0) throw new UplinkdError('usage', `a command is needed\n${USAGE}`);
  const [word, ...rest] = argv as [string, ...string[]];
  if (word === 'lab') {
    const [action, ...labRest] = rest;
    const spec = COMMANDS[`lab ${action}`];
    if (action === undefined || spec === undefined) {
      throw new UplinkdError('usage', `${action === undefined ? 'lab needs up or down' : `unknown lab action '${action}'`}\nusage: ${COMMANDS['lab up']!.usage}\n       ${COMMANDS['lab down']!.usage}`);
    }
    return parseCommandArgs(`lab ${action}`, labRest, spec);
  }
  const spec = Object.hasOwn(COMMANDS, word) ? COMMANDS[word] : undefined;
  if (spec === undefined) throw new UplinkdError('usage', `unknown command '${word}'\n${USAGE}`);
  return parseCommandArgs(word, rest, spec);
}

/** Commands that change routing fail at once, with the reason, rather than once per change. */
async function requireNetAdmin(command: string): Promise<void> {
  const { hasNetAdmin } = await import('../system/capabilities');
  if (!hasNetAdmin()) {
    throw new UplinkdError('permission', `${command} changes routing and needs root (CAP_NET_ADMIN); try: sudo uplinkd ${command}`);
  }
}

function reportError(err: unknown): number {
  if (err instanceof UplinkdError) {
    // Messages quote files, names and kernel text: nothing in them may drive the terminal.
    console.error(escapeControl(err.code === 'config' ? err.message : `uplinkd: ${err.message}`, '\n'));
    return err.code === 'config' || err.code === 'usage' ? EXIT.invalid : EXIT.failure;
  }
  console.error(escapeControl(`uplinkd: ${err instanceof Error ? err.stack ?? err.message : String(err)}`, '\n'));
  return EXIT.failure;
}

type PlanFormat = 'text' | 'ip' | 'json';

function formatOption(value: string | true | undefined): PlanFormat {
  if (value === undefined) return 'text';
  if (value === 'text' || value === 'ip' || value === 'json') return value;
  throw new UplinkdError('usage', `--format must be text, ip or json (got ${String(value)})`);
}

async function check(configFile: string): Promise<number> {
  const [{ configuredPlace, monitorWarnings }, { execWarnings }, { markNeighbourWarnings, readKernelForCheck }] = await Promise.all([
    import('../config/monitor-warnings'), import('../nft/exec'), import('./oneshot')]);
  // The kernel as it is here: a static gateway must not be one of the router's addresses (an error with its line).
  let kernel: KernelState | undefined;
  let unread: string | undefined;
  try {
    kernel = await readKernelForCheck();
  } catch (err) {
    unread = err instanceof Error ? err.message : String(err);
  }
  const localAddresses = kernel && new Map(kernel.addresses.map((a) => [a.address, a.dev]));
  const config = await loadConfig(configFile, localAddresses ? { localAddresses } : {});
  for (const w of config.warnings ?? []) warn(w);
  console.log(`${configFile}: ok (${plural(config.uplinks.length, 'uplink')}, default ${config.default})`);
  for (const w of monitorWarnings(config, configuredPlace(config))) warn(w);
  for (const w of execWarnings(config)) warn(w);
  if (kernel) for (const w of await markNeighbourWarnings(config, kernel)) warn(w);
  else warn(`cannot read the kernel (${unread}): gateways not checked against this router's addresses, other programs' marks not looked for`);
  return EXIT.ok;
}

async function planCommand(configFile: string, format: PlanFormat): Promise<number> {
  const config = await loadConfig(configFile);
  const [{ planOnce }, { formatPinningChange }, { formatChange }, { formatPlanText }] = await Promise.all([
    import('./oneshot'), import('../engine/cycle'), import('../model/text'), import('../render/render')]);
  const result = await planOnce(config, warn);
  if (format === 'json') {
    const nft = result.pinning.change;
    const changes = [...(nft ? [formatPinningChange(nft)] : []), ...result.changes.map(formatChange)];
    console.log(jsonText({ uplinks: result.plan.uplinks, policies: result.plan.policies, warnings: result.plan.warnings, pinning: result.pinning.status, changes }));
  } else if (format === 'ip') {
    if (result.pinning.change) console.log(formatPinningChange(result.pinning.change, true));
    printLines(result.changes.map(formatChange));
  } else {
    console.log(formatPlanText(result));
  }
  return EXIT.ok;
}

/** One write for many lines: thousands of console.log calls cost more than the netlink work. */
function printLines(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

async function applyCommand(configFile: string): Promise<number> {
  const config = await loadConfig(configFile);
  // Not refused: the daemon may run this very file. Said, since a daemon of another file undoes what differs.
  const other = await otherProtocolDaemon(config, configFile);
  if (other) warn(`${other}: it keeps its own configuration and undoes what this apply changes that differs from it`);
  const [{ applyOnce }, { formatPinningChange }, { formatChange }] = await Promise.all([
    import('./oneshot'), import('../engine/cycle'), import('../model/text')]);
  const result = await applyOnce(config, warn);
  if (result.pinningApplied) console.log(formatPinningChange(result.pinningApplied));
  printLines(result.applied.map(formatChange));
  // Pinning is a convenience on top of routing: its failure is reported but routing stands.
  if (result.pinningFailed) warn(`flow pinning is off: ${result.pinningFailed.message}`);
  for (const { change, error } of result.failed) console.error(`uplinkd: failed: ${formatChange(change)}: ${error.message}`);
  // Another program's object in uplinkd's place: what it blocks was not applied, so the kernel does not match the plan.
  const { collisions } = result.plan;
  for (const c of collisions) console.error(`uplinkd: blocked: ${c.uplink ?? 'balanced default'}: ${c.text}`);
  const applied = result.applied.length + (result.pinningApplied ? 1 : 0);
  console.log(`${applied} changes applied${result.failed.length ? `, ${result.failed.length} failed` : ''}${collisions.length ? `, ${collisions.length} blocked by another program's objects (the kernel does NOT match the plan)` : ''}`);
  return result.failed.length || collisions.length ? EXIT.failure : EXIT.ok;
}

/**
 * `another uplinkd (pid N) manages routing protocol P in this network namespace` when a daemon holds the instance
 * lock of `config.protocol` here (src/daemon/instance-lock.ts), other than the daemon of `configFile` when that is
 * given (found through its socket record); undefined otherwise.
 */
async function otherProtocolDaemon(config: Config, configFile?: string): Promise<string | undefined> {
  const { instanceLockHolder } = await import('../daemon/instance-lock');
  const holder = await instanceLockHolder(config.protocol);
  if (!holder) return undefined;
  if (configFile !== undefined && holder.pid !== undefined && String((await runningDaemon(configFile))?.status.pid) === holder.pid) return undefined;
  return `another uplinkd${holder.pid ? ` (pid ${holder.pid})` : ''} manages routing protocol ${config.protocol} in this network namespace`;
}

async function execCommand(rest: string[]): Promise<number> {
  const dash = rest.indexOf('--');
  if (dash < 0) throw new UplinkdError('usage', `exec needs -- before the command\nusage: ${COMMANDS.exec!.usage}`);
  const args = parseCommandArgs('exec', rest.slice(0, dash), COMMANDS.exec!);
  if (args.positional.length !== 1) throw new UplinkdError('usage', `exec needs the name of an uplink\nusage: ${COMMANDS.exec!.usage}`);
  const config = await loadConfig(typeof args.options.config === 'string' ? args.options.config : DEFAULT_CONFIG);
  const { execInUplink } = await import('../nft/exec');
  return execInUplink(config, args.positional[0]!, rest.slice(dash + 1));
}

async function downCommand(configFile: string, force: boolean): Promise<number> {
  // A running daemon would restore at once what down removes (as drift), and leave the name files gone.
  const running = await runningDaemon(configFile);
  const config = running ? undefined : await loadConfig(configFile);
  const socket = running?.socket ?? config!.paths.controlSocket;
  const live = running ? running.status : (await liveStatus(socket)) as LiveFile | undefined;
  const pid = live?.pid;
  // A daemon of another file on this file's socket would restore its own objects, which are likely the same ones.
  const who = live !== undefined && !running && await daemonRuns(live, configFile) === 'other'
    ? `${otherDaemon(live, socket, configFile)}, but it manages this namespace's routing`
    : `a daemon runs ${configFile} (pid ${String(pid)}, control socket ${socket})`;
  if (pid !== undefined && !force) {
    throw new UplinkdError('io', `${who}: it would restore what down removes. `
      + 'Stop it instead: `systemctl stop uplinkd` leaves routing in place; a daemon started with `uplinkd run --cleanup` removes everything it made when stopped. '
      + '`uplinkd down --force` removes it anyway (the daemon puts most of it back at its next cycle).');
  }
  if (pid !== undefined) warn(`${who}: it will restore what down removes`);
  const current = config ?? await loadConfig(configFile);
  if (pid === undefined) {
    // A daemon of another file with another control socket still manages this protocol here (its instance lock).
    const other = await otherProtocolDaemon(current);
    if (other && !force) {
      throw new UplinkdError('io', `${other}: it would restore what down removes. Stop it instead (\`uplinkd down -c ITS_FILE\` `
        + 'refuses too while it runs). `uplinkd down --force` removes it anyway (the daemon puts most of it back at its next cycle).');
    }
    if (other) warn(`${other}: it will restore what down removes`);
  }
  const [{ downOnce }, { formatPinningChange, describeKept }, { formatChange }, { removeExecCgroups }] = await Promise.all([
    import('./oneshot'), import('../engine/cycle'), import('../model/text'), import('../nft/exec')]);
  const result = await downOnce(current);
  for (const dir of await removeExecCgroups(current)) console.log(`rmdir ${dir}`);
  if (result.pinningRemoved) console.log(formatPinningChange({ op: 'delete' }));
  printLines([...result.applied.map(formatChange), ...result.sysctlRestored]);
  if (result.sysctlNote) warn(`multipath_hash: ${result.sysctlNote}`);
  if (result.pinningFailed) console.error(`uplinkd: failed: ${result.pinningFailed.message}`);
  for (const { change, error } of result.failed) console.error(`uplinkd: failed: ${formatChange(change)}: ${error.message}`);
  // Not everything is removed: exit 1 like a failure, so scripts notice; what else was there is gone.
  for (const k of result.kept) console.error(`uplinkd: ${describeKept(k)}`);
  const failed = result.failed.length + (result.pinningFailed ? 1 : 0);
  const kept = result.kept.length > 0 ? `, ${result.kept.length} nexthop${result.kept.length === 1 ? '' : 's'} kept for other programs' routes` : '';
  console.log(`${result.applied.length + (result.pinningRemoved ? 1 : 0) + result.sysctlRestored.length} changes applied${failed ? `, ${failed} failed` : ''}${kept}`);
  return failed || kept ? EXIT.failure : EXIT.ok;
}

/** The configuration file parsed and checked (src/config/load.ts, loaded only by the commands that need it), against `facts` if given. */
async function loadConfig(file: string, facts?: CheckFacts): Promise<Config> {
  const load = await import('../config/load');
  return load.loadConfig(file, facts);
}

/** A daemon found through its socket record: where it listens and its status answer (of the view asked for). */
interface RunningDaemon {
  socket: string;
  status: { pid?: unknown; configRealPath?: unknown; text?: unknown };
  /** The file holds the text the daemon adopted. */
  sameText: boolean;
}

/**
 * The daemon that adopted `configFile`, found from its socket record (src/daemon/socket-record.ts)
 * whatever the file says now (edited socket, broken file): the record names its socket, and the
 * daemon answering there confirms it runs this file (configRealPath). `view`: the status answer wanted
 * (src/daemon/control.ts). undefined when there is no record, nobody answers, or the daemon there runs another file.
 */
async function runningDaemon(configFile: string, view: StatusView = 'text'): Promise<RunningDaemon | undefined> {
  const { findSocketRecord } = await import('../daemon/socket-record');
  const found = findSocketRecord(configFile);
  if (found === undefined) return undefined;
  const status = (await liveStatus(found.controlSocket, view)) as RunningDaemon['status'] | undefined;
  if (status === undefined || status.configRealPath !== found.file) return undefined;
  return { socket: found.controlSocket, status, sameText: found.sameText };
}

/**
 * Where the daemon for `configFile` listens: the running daemon's, found from its record
 * (runningDaemon), else the socket the file names (parsing it: UplinkdError('config') when invalid).
 * With no record and no file: UplinkdError('io') "no daemon", naming the default path when `-c` was
 * not given (`explicit` false).
 */
async function controlSocket(configFile: string, explicit: boolean): Promise<string> {
  const running = await runningDaemon(configFile);
  if (running !== undefined) return running.socket;
  const { existsSync } = await import('node:fs');
  if (!existsSync(configFile)) {
    throw new UplinkdError('io', `no daemon: none runs ${configFile}, and there is no such file${explicit ? '' : ' (the default; give -c FILE)'}`);
  }
  const socket = (await loadConfig(configFile)).paths.controlSocket;
  const live = (await liveStatus(socket)) as LiveFile | undefined;
  if (live !== undefined && await daemonRuns(live, configFile) === 'other') throw new UplinkdError('io', otherDaemon(live, socket, configFile));
  return socket;
}

/** A note when `configFile` now leads to another file than `daemonReal`, the real path the daemon loaded it from. */
async function leadsElsewhere(configFile: string, daemonReal: unknown): Promise<string[]> {
  const { lastRealPaths } = await import('../daemon/socket-record');
  const now = lastRealPaths(configFile)[0];
  return now === undefined || now === daemonReal ? [] : [`${configFile} now leads to ${now}, not to ${String(daemonReal)} that the daemon loaded from it`];
}

/** What a daemon's status says about the file it runs (src/daemon/run.ts). */
interface LiveFile {
  pid?: unknown;
  /** realpath(3) of its file at its last adopted load. */
  configRealPath?: unknown;
  /** The absolute name it was started with (`-c`), symlinks not followed. */
  configFile?: unknown;
}

/**
 * How the daemon whose status is `live` relates to the file the user named: 'same' when it runs that file (its real
 * path is one `configFile` has, or had: lastRealPaths), 'repointed' when it was started with this very name but
 * that name now leads to another file (a symlink re-pointed, a file renamed over it), 'other' when it runs another file.
 */
async function daemonRuns(live: LiveFile, configFile: string): Promise<'same' | 'repointed' | 'other'> {
  const [{ lastRealPaths }, { resolve }] = await Promise.all([import('../daemon/socket-record'), import('node:path')]);
  if (typeof live.configRealPath === 'string' && lastRealPaths(configFile).includes(live.configRealPath)) return 'same';
  return typeof live.configFile === 'string' && live.configFile === resolve(configFile) ? 'repointed' : 'other';
}

/** Says that the daemon answering on `socket` runs another file than `configFile`. */
function otherDaemon(live: LiveFile, socket: string, configFile: string): string {
  const file = typeof live.configFile === 'string' ? `${live.configFile} (${String(live.configRealPath)})` : String(live.configRealPath);
  return `the daemon on ${socket} (pid ${String(live.pid)}) runs ${file}, not ${configFile}: it is not this file's daemon`;
}

async function statusCommand(configFile: string, json: boolean): Promise<number> {
  // With a daemon running, its record names the socket: print its answer, whatever the file says now.
  const running = await runningDaemon(configFile, json ? 'full' : 'text');
  if (running !== undefined) {
    const notes = running.sameText ? [] : [...await leadsElsewhere(configFile, running.status.configRealPath), ...await fileNotes(configFile)];
    if (json) writeOut(`${jsonText(notes.length ? { ...running.status, fileChanged: true, fileNotes: notes } : running.status)}\n`);
    else writeOut(`${[formatLiveStatus(running.status), ...notes.map((n) => `warning: ${escapeControl(n, '\n')}`)].join('\n')}\n`);
    return EXIT.ok;
  }
  const config = await loadConfig(configFile);
  const live = (await liveStatus(config.paths.controlSocket, json ? 'full' : 'text')) as LiveFile | undefined;
  const runs = live === undefined ? undefined : await daemonRuns(live, configFile);
  if (live !== undefined && runs === 'same') {
    writeOut(`${json ? jsonText(live) : formatLiveStatus(live)}\n`);
    return EXIT.ok;
  }
  if (live !== undefined && runs === 'repointed') {
    const notes = [...await leadsElsewhere(configFile, live.configRealPath), ...await fileNotes(configFile)];
    if (json) writeOut(`${jsonText({ ...live, fileChanged: true, fileNotes: notes })}\n`);
    else writeOut(`${[formatLiveStatus(live), ...notes.map((n) => `warning: ${escapeControl(n, '\n')}`)].join('\n')}\n`);
    return EXIT.ok;
  }
  // Another daemon answers on the socket this file names: its state is not this file's; show the file's own plan.
  const other = live === undefined ? undefined : otherDaemon(live, config.paths.controlSocket, configFile);
  if (other !== undefined && !json) warn(`${other}; below: ${configFile} planned against the kernel without a daemon`);
  const [{ planOnce }, { formatPinningChange }, { formatChange }, { changeCount, formatStatusText }] = await Promise.all([
    import('./oneshot'), import('../engine/cycle'), import('../model/text'), import('../render/render')]);
  const result = await planOnce(config, warn);
  if (json) {
    const nft = result.pinning.change;
    const pending = [...(nft ? [formatPinningChange(nft)] : []), ...result.changes.map(formatChange)];
    console.log(jsonText({ daemon: false, ...(other !== undefined ? { otherDaemon: other } : {}), inSync: changeCount(result) === 0 && result.plan.collisions.length === 0 && !result.kept?.length, pending, pinning: result.pinning.status, uplinks: result.plan.uplinks, policies: result.plan.policies, warnings: result.plan.warnings, collisions: result.plan.collisions }));
  } else {
    console.log(formatStatusText(result));
  }
  return EXIT.ok;
}

/**
 * What `status` adds when the file differs from the text the running daemon adopted: that it changed,
 * and, when it does not parse, the error (FILE:LINE:COL: field: ...) and that the daemon keeps its
 * last good configuration.
 */
async function fileNotes(configFile: string): Promise<string[]> {
  try {
    await loadConfig(configFile);
    return ['the file changed since the daemon loaded it: `uplinkd reload` to apply'];
  } catch (err) {
    if (!(err instanceof UplinkdError)) throw err;
    // A reload would be refused: say what to fix, not to reload.
    return [
      'the file changed since the daemon loaded it and is not a valid configuration now: fix it, then `uplinkd reload`',
      `${err.message} (the daemon keeps its last good configuration)`,
    ];
  }
}

/** `n thing` or `n things`. */
function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The running daemon's own view (`view`: src/daemon/control.ts), when one answers on the control socket `socket`. */
async function liveStatus(socket: string, view: StatusView = 'text'): Promise<unknown | undefined> {
  const { queryDaemon, defaultTransport } = await import('../daemon/control-client');
  try {
    return await queryDaemon(socket, { cmd: 'status', view }, 30_000, defaultTransport());
  } catch {
    return undefined;
  }
}

function formatLiveStatus(live: unknown): string {
  const text = (live as { text?: unknown }).text;
  // The daemon's text quotes lease files, interface names and kernel messages.
  return typeof text === 'string' ? escapeControl(text, '\n') : jsonText(live);
}

/**
 * Loads part of the namespace lab (lab/, compiled to dist/lab). It ships with a source checkout only, not
 * in the Debian package, so its absence is a usage error, not a crash.
 */
async function loadLab<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    throw new UplinkdError('usage', 'uplinkd lab: the namespace lab is not installed (it comes with a source checkout: npm ci && npm run build)', { cause: err });
  }
}

async function labCommand(command: string, options: Record<string, string | true>): Promise<number> {
  const { labUp, labDown } = await loadLab(() => import('../../lab/lab'));
  const prefix = typeof options.prefix === 'string' ? options.prefix : undefined;
  const action = command === 'lab up' ? 'up' : 'down';
  if (action === 'up' && options.kernel !== undefined) {
    if (options.kernel !== 'full') throw new UplinkdError('usage', `--kernel takes full (got ${String(options.kernel)})`);
    const others = Object.keys(options).filter((o) => o !== 'kernel');
    if (others.length > 0) throw new UplinkdError('usage', `lab up --kernel full takes no other options (got --${others[0]})`);
    const { guestLabShell } = await loadLab(() => import('../../lab/guest-shell'));
    return guestLabShell();
  }
  if (action === 'up') {
    const info = await labUp({
      prefix,
      vlan: options.vlan === true,
      isp1: providerMode(options.isp1),
      isp2: providerMode(options.isp2),
      dhcpClient: dhcpClientOption(options.client),
    });
    console.log(jsonText(info));
    return EXIT.ok;
  }
  await labDown(prefix);
  return EXIT.ok;
}

function providerMode(value: string | true | undefined): 'static' | 'dhcp' | undefined {
  if (value === undefined || value === 'static' || value === 'dhcp') return value;
  throw new UplinkdError('usage', `--isp1/--isp2 take static or dhcp (got ${String(value)})`);
}

function dhcpClientOption(value: string | true | undefined): 'dhclient' | 'dhcpcd' | 'udhcpc' | 'networkd' | undefined {
  if (value === undefined || value === 'dhclient' || value === 'dhcpcd' || value === 'udhcpc' || value === 'networkd') return value;
  throw new UplinkdError('usage', `--client takes dhclient, dhcpcd, udhcpc or networkd (got ${String(value)})`);
}

/** A short cause for `uplinkd hook` from the environment DHCP clients give their hooks. */
function hookCause(): string {
  const env = process.env;
  const iface = env.interface ?? env.IFACE ?? env.INTERFACE ?? '?';
  const reason = env.reason ?? env.REASON ?? 'hook';
  return `hook ${reason} on ${iface}`;
}

function warn(message: string): void {
  console.error(`uplinkd: warning: ${escapeControl(message)}`);
}
