// The daemon's read-only HTTP endpoint (config `http.listen`, off by default):
//   GET /metrics      Prometheus text format 0.0.4
//   GET /             a small self-contained status page
//   GET /status.json  the daemon's status as JSON
// Anything else is 404, any other method 405. Nothing here changes anything.
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpListen } from '../config/types';
import type { HistorySnapshot } from '../health/history';
import { UplinkdError } from '../errors';
import type { Logger } from '../log';
import type { DaemonStatus } from './daemon';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics';
import { renderStatusPage } from './status-page';

/** DaemonStatus plus what run.ts knows besides the daemon: the health history. */
export interface ServedStatus extends DaemonStatus {
  /** The monitored uplinks' last hour (src/health/history.ts); absent when nothing is monitored. */
  history?: HistorySnapshot;
}

export interface StatusSource {
  status(): ServedStatus;
  version: string;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
}

export interface HttpServer {
  /** The bound address (the port is the real one when 0 was asked for). */
  readonly address: HttpListen;
  close(): Promise<void>;
}

/** Starts listening; throws UplinkdError('io') naming the address when it cannot bind. */
export async function startHttpServer(listen: HttpListen, source: StatusSource, log: Logger): Promise<HttpServer> {
  const server = http.createServer((req, res) => respond(req, res, source, log));
  // Answers are small and immediate: a client that dawdles over its request is cut off soon.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  try {
    server.listen({ host: listen.host, port: listen.port });
    await once(server, 'listening'); // rejects with the 'error' event's error (EADDRINUSE, EACCES)
  } catch (err) {
    throw new UplinkdError('io', `cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`, { cause: err });
  }
  server.on('error', (err) => log.error('http', { error: err.message }));
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive clients (a scraper, a browser tab) must not hold the daemon's stop up.
        server.closeAllConnections();
      }),
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string, extra: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(body);
}

function respond(req: http.IncomingMessage, res: http.ServerResponse, source: StatusSource, log: Logger): void {
  if (req.method !== 'GET') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed: uplinkd\'s HTTP endpoint is read-only (GET only)\n', { Allow: 'GET' });
    return;
  }
  const pathname = new URL(req.url ?? '/', 'http://uplinkd').pathname;
  try {
    const now = source.now?.() ?? Date.now();
    switch (pathname) {
      case '/metrics':
        send(res, 200, METRICS_CONTENT_TYPE, renderMetrics(source.status(), { version: source.version, now }));
        return;
      case '/':
        // No scripts, styles only inline: the page works (and stays inert) under the strictest policy.
        send(res, 200, 'text/html; charset=utf-8', renderStatusPage(source.status(), now), {
          'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
        });
        return;
      case '/status.json':
        send(res, 200, 'application/json; charset=utf-8', JSON.stringify(source.status(), null, 2) + '\n');
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found: try /, /metrics or /status.json\n');
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.error('http', { path: pathname, error: message });
    send(res, 500, 'text/plain; charset=utf-8', 'internal error (see the daemon log)\n');
  }
}

/**
 * The endpoint as the daemon runs it: follows `http.listen` across reloads (binds, rebinds on a
 * change, closes when removed). A bind failure is logged and never stops routing; a later reload
 * retries it.
 */
export class StatusHttp {
  private server: HttpServer | undefined;
  private bound: HttpListen | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly source: StatusSource, private readonly log: Logger) {}

  /** Makes the endpoint match `listen` (undefined: off). Calls are handled one after another. */
  configure(listen: HttpListen | undefined): Promise<void> {
    this.queue = this.queue.then(() => this.apply(listen));
    return this.queue;
  }

  /** Stops listening (configure(undefined)), after any configure() still queued. */
  close(): Promise<void> {
    return this.configure(undefined);
  }

  private async apply(listen: HttpListen | undefined): Promise<void> {
    if (this.server && listen && sameListen(this.bound, listen)) return;
    if (this.server) {
      await this.server.close();
      this.log.info('http', { msg: `stopped listening on ${text(this.bound!)}` });
      this.server = undefined;
      this.bound = undefined;
    }
    if (!listen) return;
    try {
      this.server = await startHttpServer(listen, this.source, this.log);
      this.bound = listen;
      this.log.info('http', { listen: text(this.server.address), msg: 'status page at /, metrics at /metrics, JSON at /status.json' });
    } catch (err) {
      this.log.error('http', {
        listen: text(listen),
        error: err instanceof Error ? err.message : String(err),
        msg: 'no status page or metrics; routing goes on (a reload retries)',
      });
    }
  }
}

function sameListen(a: HttpListen | undefined, b: HttpListen): boolean {
  return a !== undefined && a.host === b.host && a.port === b.port;
}

function text(l: HttpListen): string {
  return `${l.host}:${l.port}`;
}
