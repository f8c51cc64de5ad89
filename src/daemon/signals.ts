// The daemon's signals from its first instant. Node's default action for SIGHUP, SIGTERM and SIGINT
// ends the process; `uplinkd run` takes a moment to load its modules, read its file and converge,
// and a DHCP hook or `systemctl reload` may send SIGHUP meanwhile. bin/uplinkd holds the signals
// before loading anything else (this module imports nothing, to be quick); runDaemon takes them over.

/** The signals `uplinkd run` handles: SIGHUP reloads, SIGTERM and SIGINT stop. */
export type DaemonSignal = 'SIGHUP' | 'SIGTERM' | 'SIGINT';

/**
 * SIGHUP last: until our handler is in, node's own for SIGTERM and SIGINT (installed before any JavaScript runs)
 * ends the process by re-raising the signal, so a SIGTERM right after SIGHUP's handler appeared (SigCgt in
 * /proc/PID/status, what a supervisor or test sees) must find ours already in place.
 */
const SIGNALS: readonly DaemonSignal[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

let queued: DaemonSignal[] | undefined;
let route: ((signal: DaemonSignal) => void) | undefined;

/**
 * Installs handlers for SIGHUP, SIGTERM and SIGINT that queue what arrives until routeSignals().
 * Idempotent; the handlers stay for the life of the process.
 */
export function holdSignals(): void {
  if (queued) return;
  queued = [];
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      if (route) route(signal);
      else queued!.push(signal);
    });
  }
}

/**
 * Sends every later signal to `handler`, after the ones queued since holdSignals() (in arrival
 * order). The returned function stops that: signals queue again.
 */
export function routeSignals(handler: (signal: DaemonSignal) => void): () => void {
  holdSignals();
  route = handler;
  for (const signal of queued!.splice(0)) handler(signal);
  return () => {
    if (route === handler) route = undefined;
  };
}
