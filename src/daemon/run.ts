// `uplinkd run`: wires the netlink port, lease reader, daemon loop, control socket,
// signals and systemd readiness. Also the client ends of `uplinkd reload` and `uplinkd hook`.
import { spawn } from 'node:child_process';
import { loadConfig } from '../config/load';
import type { Config } from '../config/types';
import { applyPinning, formatPinningChange, observePinning, removeOwnedNames, removePinning, syncOwnedNames, type PinningPlan } from '../engine/cycle';
import { EXIT, UplinkdError } from '../errors';
import { readLeases } from '../facts/leases';
import { NetlinkKernelPort } from '../kernel/netlink-port';
import { createLogger, isLogLevel, type Logger } from '../log';
import { execWarnings } from '../nft/exec';
import { firewallMarkWarnings } from '../nft/neighbours-io';
import { pinMarks } from '../nft/marks';
import { setMultipathHashPolicy } from '../system/sysctl';
import { startControlServer, queryDaemon, type ControlServer } from './control';
import { healthActions } from '../health/actions';
import { HealthHistory } from '../health/history';
import { HealthMonitor, type HealthChange, type UplinkEndpoint } from '../health/monitor';
import type { UplinkStatus } from '../plan/planner';
import { Daemon, type SystemSettings } from './daemon';
import { packageVersion, StatusHttp, type ServedStatus } from './http';
import { formatDaemonStatus } from './status-text';
import { holdSignals, routeSignals, type DaemonSignal } from './signals';

export interface RunOptions {
  configFile: string;
  /** Remove everything uplinkd owns when stopped by SIGTERM/SIGINT (default: leave routing working). */
  cleanupOnExit: boolean;
}

/** The last known state of flow pinning's nftables table, for `uplinkd status`. */
interface PinningState {
  status: string;
  /** The table matches the config; undefined when pinning is disabled or not checked yet (metrics). */
  inPlace?: boolean;
}

function pinningInPlace(plan: PinningPlan): boolean | undefined {
  return plan.desired === undefined ? undefined : plan.observed.kind === 'present' && plan.change === undefined;
}

/**
 * Makes flow pinning's nftables table match the config (one `nft -f -` when it differs) and
 * notes the outcome. Never throws: routing goes on without pinning.
 */
async function syncPinning(config: Config, log: Logger, state: PinningState, cause: string): Promise<void> {
  try {
    const plan = await observePinning(config);
    if (plan.warning && plan.status !== state.status) log.warn('pinning', { msg: plan.warning });
    const change = await applyPinning(plan);
    if (change) log.info('apply', { change: formatPinningChange(change), cause });
    const current = change ? await observePinning(config) : plan;
    state.status = current.status;
    state.inPlace = pinningInPlace(current);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.error('pinning', { error: message, msg: 'flow pinning is off; routing goes on' });
    state.status = `flow pinning: off: ${message}`;
    state.inPlace = config.pinning?.enabled ? false : undefined;
  }
}

/** Name files, the multipath sysctl and flow pinning's nftables table: at start, reload and stop --cleanup. */
function systemSettings(log: Logger, pinning: PinningState): SystemSettings {
  return {
    async sync(config: Config) {
      await syncPinning(config, log, pinning, 'start or reload');
      for (const msg of await firewallMarkWarnings(config)) log.warn('pinning', { msg });
      for (const msg of execWarnings(config)) log.warn('exec', { msg });
      await syncOwnedNames(config);
      if (config.multipathHashPolicy !== undefined) await setMultipathHashPolicy(config.multipathHashPolicy);
    },
    async remove(config: Config) {
      try {
        if (await removePinning()) log.info('apply', { change: formatPinningChange({ op: 'delete' }), cause: 'stop --cleanup' });
      } catch (err) {
        log.error('pinning', { error: err instanceof Error ? err.message : String(err) });
      }
      await removeOwnedNames(config);
    },
  };
}

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
  let config: Config;
  try {
    config = await loadConfig(opts.configFile);
  } catch (err) {
    unrouteSignals();
    process.off('unhandledRejection', onUnhandled);
    if (err instanceof UplinkdError && err.code === 'config') {
      console.error(err.message);
      return EXIT.invalid;
    }
    throw err;
  }
  const port = await NetlinkKernelPort.open();
  const pinning: PinningState = { status: 'flow pinning: not checked yet' };
  // Probes go out through each uplink as the last plan resolved it; uplinks without `monitor:` are not probed.
  // (Not called before health.start(), so `daemon` exists by then.)
  const health: HealthMonitor = new HealthMonitor(config, (name): UplinkEndpoint | undefined => {
    const u: UplinkStatus | undefined = daemon.uplink(name);
    return u && { interface: u.interface, address: u.address, gateway: u.gateway };
  });
  const daemon: Daemon = new Daemon({
    configFile: opts.configFile,
    port,
    readLeases,
    loadConfig,
    log,
    system: systemSettings(log, pinning),
    health,
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
  // nft changes send no rtnetlink events, and a firewall reload (`nft flush ruleset`) takes our
  // table too: check it at every resync period (one `nft list` process) and restore it if needed.
  const pinningCheck = setInterval(() => {
    const current = daemon.currentConfig();
    if (current) void syncPinning(current, log, pinning, 'periodic check: table ip uplinkd missing or changed');
  }, config.daemon.resyncMs);
  pinningCheck.unref();
  const served = (): ServedStatus => ({
    ...daemon.status(),
    pinning: pinning.status,
    ...(pinning.inPlace !== undefined ? { pinningInPlace: pinning.inPlace } : {}),
    history: history.snapshot(Date.now()),
  });
  // Status page and metrics (http.listen): follows reloads; failing to bind never stops routing.
  const http = new StatusHttp({ status: served, version: packageVersion() }, log);
  const reload = async () => {
    const result = await daemon.reload();
    await http.configure(daemon.currentConfig()?.http?.listen);
    return result;
  };
  let control: ControlServer | undefined;
  try {
    // The socket first: a second daemon must fail before it touches the kernel.
    control = await startControlServer(
      config.paths.controlSocket,
      {
        status: () => {
          const s = served();
          // The pinning line goes right under the uplink table.
          return { ...s, text: formatDaemonStatus(s).replace('\n\n', `\n\n${pinning.status}\n`) };
        },
        reload,
        resync: (cause) => daemon.nudge(cause),
      },
      log,
    );
    await daemon.start();
    health.start();
    await http.configure(daemon.currentConfig()?.http?.listen);
  } catch (err) {
    clearInterval(pinningCheck);
    clearInterval(sampling);
    await control?.close();
    await daemon.stop({ cleanup: false });
    port.close();
    unrouteSignals();
    process.off('unhandledRejection', onUnhandled);
    throw err;
  }
  notifySystemd('READY=1', log);
  log.info('ready', { control: config.paths.controlSocket, cleanup_on_exit: opts.cleanupOnExit });

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
      void (async () => {
        clearInterval(pinningCheck);
        clearInterval(sampling);
        await step('health', () => health.stop());
        const ok = await step('daemon', () => daemon.stop({ cleanup: opts.cleanupOnExit }));
        await step('http', () => http.close());
        await step('control', () => control?.close());
        port.close();
        unrouteSignals();
        process.off('unhandledRejection', onUnhandled);
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

/** `uplinkd reload`: the daemon re-reads its file; a rejected file throws UplinkdError('config') with the check error. */
export async function reloadDaemon(socketPath: string): Promise<number> {
  await queryDaemon(socketPath, { cmd: 'reload' });
  console.log('uplinkd: configuration reloaded');
  return EXIT.ok;
}

/** `uplinkd hook`: asks the daemon for a resync now (from a DHCP client's hook). */
export async function hookNudge(socketPath: string, cause: string): Promise<number> {
  await queryDaemon(socketPath, { cmd: 'resync', cause }, 5_000);
  return EXIT.ok;
}
