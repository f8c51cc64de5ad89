// `uplinkd run`: wires the netlink port, lease reader, daemon loop, control socket,
// signals and systemd readiness. The client ends of `uplinkd reload` and `uplinkd hook` are in src/cli/main.ts.
import { spawn } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadConfigBytes } from '../config/load';
import type { Config } from '../config/types';
import { removeOwnedNames, syncOwnedNames } from '../engine/cycle';
import { EXIT, UplinkdError } from '../errors';
import { readLeases } from '../facts/leases';
import { NetlinkKernelPort } from '../kernel/netlink-port';
import { createLogger, isLogLevel, rateLimited, type Logger } from '../log';
import { execWarnings, removeExecCgroups } from '../nft/exec';
import { firewallMarkWarnings } from '../nft/neighbours-io';
import { pinMarks } from '../nft/marks';
import { hashRecordPath, IPV4_SYSCTL_DIR, restoreMultipathHash, syncMultipathHash } from '../system/sysctl';
import { startControlServer, type ControlServer } from './control';
import { holdInstanceLock, type InstanceLock } from './instance-lock';
import { healthActions } from '../health/actions';
import { HealthHistory } from '../health/history';
import { HealthMonitor, type HealthChange } from '../health/monitor';
import { runNft } from '../nft/nft';
import { watchNftables } from '../nft/events';
import { PlannedUplinks } from './planned-uplinks';
import { Daemon, type SystemSettings } from './daemon';
import { StatusHttp, type ServedStatus } from './http';
import { packageVersion, removeSocketRecord, writeSocketRecord } from './socket-record';
import { formatDaemonStatus } from './status-text';
import { holdSignals, routeSignals, type DaemonSignal } from './signals';

export interface RunOptions {
  configFile: string;
  /** Remove everything uplinkd owns when stopped by SIGTERM/SIGINT (default: leave routing working). */
  cleanupOnExit: boolean;
}

/**
 * Name files, the multipath sysctl, warnings about other programs' marks and `uplinkd exec`, and (stop --cleanup)
 * exec's cgroups: at start, reload and stop --cleanup. Flow pinning's nftables table is not here: it is part of every cycle (src/engine/cycle.ts).
 */
function systemSettings(log: Logger): SystemSettings {
  return {
    async sync(config: Config, previous?: Config) {
      for (const msg of await firewallMarkWarnings(config)) log.warn('pinning', { msg });
      for (const msg of execWarnings(config)) log.warn('exec', { msg });
      await syncOwnedNames(config, previous);
      const note = await syncMultipathHash(config.multipathHash, await hashRecordPath());
      if (note) log.warn('multipath_hash', { msg: note });
    },
    async remove(config: Config) {
      await removeOwnedNames(config);
      for (const dir of await removeExecCgroups(config)) log.info('apply', { change: `rmdir ${dir}`, cause: 'stop --cleanup' });
      const { restored, note } = await restoreMultipathHash(IPV4_SYSCTL_DIR, await hashRecordPath());
      for (const change of restored) log.info('apply', { change, cause: 'stop --cleanup' });
      if (note) log.warn('multipath_hash', { msg: note });
    },
  };
}

/**
 * Writes the socket record of `file` (src/daemon/socket-record.ts) so that the CLI finds this daemon
 * on `listening` (the socket it started on, whatever the file names now) without parsing YAML;
 * `adopted` are the bytes the daemon loaded the running config from. Returns the record's path, or
 * undefined (logged) when the directory is not writable: the CLI then parses the file, as it always could.
 */
async function recordSocket(file: string, adopted: Buffer, listening: string, log: Logger): Promise<string | undefined> {
  try {
    return await writeSocketRecord(file, adopted, listening);
  } catch (err) {
    log.warn('control', { msg: `no socket record for ${file} (uplinkd status will parse the file): ${err instanceof Error ? err.message : String(err)}` });
    return undefined;
  }
}

/**
 * A config file modified less than this many ms ago is read again until it stops changing (a reload
 * sent while a tool still writes the file must not adopt half of it: src/config/load.ts).
 */
const CONFIG_SETTLE_MS = 200;

/** How long a stop may take before the daemon ends regardless, ms (systemd's TimeoutStopSec is 90 s). */
const STOP_DEADLINE_MS = 10_000;

/**
 * Runs until SIGTERM/SIGINT; resolves with the exit code. Signals are handled from the first
 * instant: before `ready`, SIGHUP is remembered (one reload once started) and SIGTERM/SIGINT stop
 * the daemon as soon as it has started.
 */
export async function runDaemon(opts: RunOptions): Promise<number> {
  holdSignals();
  const envLevel = process.env.UPLINKD_LOG_LEVEL ?? 'info';
  const log = createLogger({ level: isLogLevel(envLevel) ? envLevel : 'info' });
  const early: { reload: boolean; stop?: DaemonSignal } = { reload: false };
  let onSignal = (signal: DaemonSignal): void => {
    log.info('signal', { signal, msg: signal === 'SIGHUP' ? 'before ready: reload queued' : 'before ready: stopping once started' });
    if (signal === 'SIGHUP') early.reload = true;
    else early.stop ??= signal;
  };
  const unrouteSignals = routeSignals((signal) => onSignal(signal));
  // A promise nobody handled is a bug; Node 20 would end the process on it, taking routing upkeep with it.
  const onUnhandled = (reason: unknown): void => {
    log.error('unhandled-rejection', { error: reason instanceof Error ? reason.stack ?? reason.message : String(reason), msg: 'bug: please report; the daemon keeps running' });
  };
  process.on('unhandledRejection', onUnhandled);
  // Loaded once: the health monitor and the daemon's start get the same config, even if the file changes meanwhile.
  let loaded: { config: Config; bytes: Buffer } | undefined;
  try {
    loaded = await loadConfigBytes(opts.configFile, CONFIG_SETTLE_MS);
  } catch (err) {
    unrouteSignals();
    process.off('unhandledRejection', onUnhandled);
    if (err instanceof UplinkdError && err.code === 'config') {
      console.error(err.message);
      return EXIT.invalid;
    }
    throw err;
  }
  const config = loaded.config;
  // The daemon's cycles read the view kept from notifications. What the port skips (malformed or
  // foreign datagrams) is logged as logfmt lines, a flood of them as one line and a count.
  const netlinkWarning = rateLimited((f) => log.warn('netlink', f), 5_000);
  const port = await NetlinkKernelPort.open({ cache: true, log: (msg) => netlinkWarning({ msg }) });
  // Built in dependency order: the daemon publishes each plan's uplinks in `planned`, and the health
  // monitor probes through each uplink as the last plan resolved it (uplinks without `monitor:` are not probed).
  const planned = new PlannedUplinks();
  const health = new HealthMonitor(config, planned.endpoint, { log });
  // The bytes of the config the daemon loaded last: a start or reload that succeeded adopted exactly these.
  let loadedBytes: Buffer | undefined;
  const daemon = new Daemon({
    configFile: opts.configFile,
    port,
    readLeases,
    loadConfig: async (file) => {
      const { config: next, bytes } = loaded ?? (await loadConfigBytes(file, CONFIG_SETTLE_MS));
      loaded = undefined;
      loadedBytes = bytes;
      return next;
    },
    log,
    system: systemSettings(log),
    nft: runNft,
    nftWatch: watchNftables(),
    health,
    uplinks: planned,
  });
  // After the replan that a health change causes: clear the dead uplink's connections, run the hooks.
  health.on('change', healthActions({
    hooksDir: () => (daemon.currentConfig() ?? config).paths.hooksDir,
    log,
    afterReplan: () => daemon.whenIdle(),
    uplinks: () => daemon.status().uplinks,
    pinMark: (name) => {
      const current = daemon.currentConfig() ?? config;
      const pin = pinMarks(current).find((m) => m.uplink === name);
      return pin && { mark: pin.mark, mask: current.pinning!.markMask };
    },
  }));
  // The status page's last hour: a sample of every monitored uplink each second, each change with its reason.
  const history = new HealthHistory();
  health.on('change', (c: HealthChange) => history.change(c.uplink, { at: c.stats.since, from: c.from, to: c.to, reason: c.reason }));
  const sampling = setInterval(() => history.sample(Date.now(), health.stats()), 1_000);
  sampling.unref();
  const served = (): ServedStatus => ({ ...daemon.status(), history: history.snapshot(Date.now()) });
  // Status page and metrics (http.listen): follows reloads; failing to bind never stops routing.
  const http = new StatusHttp({ status: served, version: packageVersion() }, log);
  let record: string | undefined;
  // The control socket stays where it started: a reload cannot move it (the record says so).
  const listening = config.paths.controlSocket;
  // The CLI checks that the daemon it reached through a record runs the file it was given.
  let configRealPath = opts.configFile;
  // The name it was started with: a symlink re-pointed since still names this daemon's file (the CLI says it changed).
  const configFile = resolve(opts.configFile);
  const publishNow = async (): Promise<void> => {
    configRealPath = await realpath(opts.configFile).catch(() => configRealPath);
    const next = loadedBytes && (await recordSocket(opts.configFile, loadedBytes, listening, log));
    // The file's real path can change under a symlink: a record under the old one would be stale.
    if (record !== undefined && next !== record) await removeSocketRecord(record);
    record = next;
  };
  // One at a time: reloads from SIGHUP and the control socket may overlap, and interleaved
  // publishes could remove the record just written or leave a stale one.
  let publishing = Promise.resolve();
  const publish = (): Promise<void> => (publishing = publishing.then(publishNow, publishNow));
  const reload = async () => {
    const result = await daemon.reload();
    await http.configure(daemon.currentConfig()?.http?.listen);
    if (!result.ok) return result;
    await publish();
    const now = daemon.currentConfig()?.paths.controlSocket;
    const notes = now !== undefined && now !== listening
      ? [`paths.control_socket changed to ${now}: the daemon keeps listening on ${listening} until it restarts`]
      : [];
    return { ok: true as const, notes, cycle: result.cycle };
  };
  let control: ControlServer | undefined;
  let lock: InstanceLock | undefined;
  try {
    // The lock and the socket first: a second daemon must fail before it touches the kernel.
    lock = await holdInstanceLock(config.protocol);
    control = await startControlServer(
      listening,
      {
        status: (view) => {
          // The text needs no history: a text status skips its snapshot (up to an hour of samples per uplink).
          const s = view === 'text' ? daemon.status() : served();
          // The pinning line goes right under the uplink table.
          const text = formatDaemonStatus(s).replace('\n\n', `\n\n${s.pinning}\n`);
          return view === 'text' ? { pid: s.pid, configRealPath, configFile, text } : { ...s, configRealPath, configFile, text };
        },
        reload,
        resync: (cause) => daemon.nudge(cause),
      },
      log,
    );
    await daemon.start();
    health.start();
    await http.configure(daemon.currentConfig()?.http?.listen);
    await publish();
  } catch (err) {
    clearInterval(sampling);
    await control?.close();
    await daemon.stop({ cleanup: false });
    await lock?.release();
    port.close();
    unrouteSignals();
    process.off('unhandledRejection', onUnhandled);
    throw err;
  }
  notifySystemd('READY=1', log);
  // Ready means started, with the truth about the first cycle: converged=false when the kernel refused
  // changes (they are retried, and shown on their uplinks' status lines).
  const first = daemon.status();
  log.info('ready', { control: listening, converged: first.inSync, failed: first.lastCycle?.failed ?? 0, held_back: first.lastCycle?.deferred ?? 0, cleanup_on_exit: opts.cleanupOnExit });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onHup = () => {
      if (stopping) return;
      log.info('signal', { signal: 'SIGHUP', msg: 'reloading configuration' });
      reload().catch((err: unknown) => log.error('reload', { error: err instanceof Error ? err.message : String(err), msg: 'keeping the running configuration' }));
    };
    const onStop = (signal: DaemonSignal) => {
      if (stopping) return;
      stopping = true;
      log.info('signal', { signal, msg: opts.cleanupOnExit ? 'stopping, removing routing (--cleanup)' : 'stopping, routing stays in place' });
      const step = async (what: string, fn: () => unknown): Promise<boolean> => {
        try {
          await fn();
          return true;
        } catch (err) {
          log.error('stop', { step: what, error: err instanceof Error ? err.message : String(err) });
          return false;
        }
      };
      // A step stuck in I/O (a hung file read, an nft that never returns) must not keep the
      // daemon alive: past the deadline it ends anyway (bin/uplinkd exits with the code).
      const deadline = setTimeout(() => {
        log.error('stop', { msg: `not stopped after ${STOP_DEADLINE_MS} ms (stuck I/O?): exiting anyway` });
        resolve(EXIT.failure);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      void (async () => {
        clearInterval(sampling);
        await step('health', () => health.stop());
        const ok = await step('daemon', () => daemon.stop({ cleanup: opts.cleanupOnExit }));
        await step('http', () => http.close());
        await step('control', () => control?.close());
        if (record !== undefined) await step('socket record', () => removeSocketRecord(record!));
        await step('instance lock', () => lock?.release());
        port.close();
        unrouteSignals();
        process.off('unhandledRejection', onUnhandled);
        clearTimeout(deadline);
        resolve(ok ? EXIT.ok : EXIT.failure);
      })();
    };
    onSignal = (signal) => (signal === 'SIGHUP' ? onHup() : onStop(signal));
    if (early.stop) onStop(early.stop);
    else if (early.reload) onHup();
  });
}

/**
 * sd_notify without a datagram socket in Node: `systemd-notify` (systemd >= 246 waits
 * until the manager has read the message, so it is attributed to our unit;
 * the unit sets NotifyAccess=all because the message comes from a child).
 */
function notifySystemd(state: string, log: Logger): void {
  if (!process.env.NOTIFY_SOCKET) return;
  const args = state === 'READY=1' ? ['--ready'] : [state];
  const child = spawn('systemd-notify', args, { stdio: 'ignore' });
  child.on('error', (err) => log.warn('notify', { msg: `cannot run systemd-notify: ${err.message}` }));
  child.on('exit', (code) => {
    if (code !== 0) log.warn('notify', { msg: `systemd-notify ${args.join(' ')} exited with ${code}` });
  });
}
