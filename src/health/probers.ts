// One prober per monitored uplink: it sends probes from the uplink's address (and, for ICMP,
// bound to its device), so they leave through the uplink whatever the default route is:
// uplinkd's `from <address> lookup <uplink table>` and `oif <device> lookup <uplink table>`
// rules send them there. No process is spawned per probe.
import dgram from 'node:dgram';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { ProbeMethod } from '../config/types';
import { UplinkdError } from '../errors';
import { dnsQuery, dnsResponseId } from './dns-packet';
import { echoRequest, parseIcmp } from './icmp-packet';
import { loadIcmpAddon, type IcmpAddon, type IcmpHandle } from './native';
import type { Refusal } from './state';

/**
 * With `refusal`, the failure is the path refusing the probe (an ICMP error about it, state.ts Refusal).
 * An answer without `rttMs` is proof of life without an RTT sample: the kernel may have sent the
 * probe more than once, and which copy was answered is unknown (Karn's algorithm, RFC 6298 §3).
 */
export type ProbeReply = { ok: true; rttMs?: number } | { ok: false; error: string; refusal?: Refusal };

export interface ProbeTarget {
  /** As configured (an address or a host name; HTTP(S) sends it as Host and SNI). */
  name: string;
  ip: string;
}

export interface Prober {
  /** Settles with the answer or the failure, at the latest after `waitMs`; never rejects. */
  probe(target: ProbeTarget, waitMs: number): Promise<ProbeReply>;
  close(): void;
}

export interface ProbeSource {
  /** The uplink's address: every probe socket is bound to it. */
  address: string;
  /** The uplink's interface: ICMP sockets are bound to it (SO_BINDTODEVICE). */
  interface: string;
}

export const DEFAULT_PORTS: Record<Exclude<ProbeMethod, 'icmp'>, number> = { tcp: 443, http: 80, https: 443, dns: 53 };

/** Throws UplinkdError when the socket cannot be opened (no addon, no permission, address gone). */
export function createProber(method: ProbeMethod, source: ProbeSource, port?: number): Prober {
  switch (method) {
    case 'icmp':
      return new IcmpProber(loadIcmpAddon(), source);
    case 'tcp':
      return new TcpProber(source, port ?? DEFAULT_PORTS.tcp);
    case 'http':
    case 'https':
      return new HttpProber(method, source, port ?? DEFAULT_PORTS[method]);
    case 'dns':
      return new DnsProber(source, port ?? DEFAULT_PORTS.dns);
  }
}

/** "ENETUNREACH" -> "network unreachable"; unknown codes pass through. */
export function describeErrno(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const words: Record<string, string> = {
    ENETUNREACH: 'network unreachable',
    EHOSTUNREACH: 'host unreachable',
    ENETDOWN: 'network down',
    EADDRNOTAVAIL: 'source address not on this host',
    EPERM: 'not permitted (firewall?)',
    EACCES: 'not permitted',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'timeout',
    ENOBUFS: 'no buffer space',
    EPROTO: 'protocol error',
  };
  return (e?.code && words[e.code]) || e?.code || e?.message || String(err);
}

/**
 * A failed TCP connect (or HTTP request). EHOSTUNREACH and ENETUNREACH end a connect at once
 * when an ICMP destination unreachable or time exceeded answers the SYN (tcp_v4_err and
 * icmp_err_convert in the kernel; also a gateway that does not answer ARP): the path refused it.
 */
export function connectFailure(err: unknown): ProbeReply {
  const code = (err as NodeJS.ErrnoException)?.code;
  const error = describeErrno(err);
  return code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? { ok: false, error, refusal: { words: error } } : { ok: false, error };
}

/**
 * The kernel retransmits an unanswered SYN after its initial RTO, TCP_TIMEOUT_INIT = 1 s
 * (include/net/tcp.h; RFC 6298 §2.1), then 3 s, 7 s... A connect that took this long or longer
 * may have been answered on a retransmission, so its duration is no round trip (RFC 6298 §3).
 */
export const SYN_RTO_MS = 1_000;

/** The RTT sample of a TCP handshake that took `ms`: one round trip, or none when the SYN may have been sent again. */
export function handshakeRtt(ms: number): { rttMs?: number } {
  return ms < SYN_RTO_MS ? { rttMs: ms } : {};
}

/** Settles a probe once: the first of answer, failure or deadline wins. */
function settleOnce(resolve: (r: ProbeReply) => void, waitMs: number, cleanup: () => void) {
  let done = false;
  const finish = (reply: ProbeReply) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    cleanup();
    resolve(reply);
  };
  const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), waitMs);
  return finish;
}

interface Pending {
  target: string;
  /** performance.now() at sending, ms: the RTT is measured on the monotonic clock. */
  sentAt: number;
  finish: (r: ProbeReply) => void;
}

class IcmpProber implements Prober {
  private readonly handle: IcmpHandle;
  private readonly id = Math.floor(Math.random() * 0x10000);
  private seq = Math.floor(Math.random() * 0x10000);
  private readonly pending = new Map<number, Pending>();
  private readonly buffer = Buffer.alloc(2048);
  private closed = false;

  constructor(private readonly addon: IcmpAddon, source: ProbeSource) {
    try {
      this.handle = addon.open(source.address, source.interface, () => this.drain());
    } catch (cause) {
      const hint = (cause as NodeJS.ErrnoException).code === 'EPERM' ? ' (raw sockets need root or CAP_NET_RAW)' : '';
      throw new UplinkdError('io', `cannot open an ICMP socket on ${source.interface} from ${source.address}: ${describeErrno(cause)}${hint}`, { cause });
    }
  }

  probe(target: ProbeTarget, waitMs: number): Promise<ProbeReply> {
    return new Promise((resolve) => {
      if (this.closed) return resolve({ ok: false, error: 'prober closed' });
      this.seq = (this.seq + 1) & 0xffff;
      const seq = this.seq;
      const finish = settleOnce(resolve, waitMs, () => this.pending.delete(seq));
      this.pending.set(seq, { target: target.ip, sentAt: performance.now(), finish });
      try {
        this.addon.send(this.handle, target.ip, echoRequest(this.id, seq));
      } catch (err) {
        finish({ ok: false, error: describeErrno(err) });
      }
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.handle);
    for (const p of [...this.pending.values()]) p.finish({ ok: false, error: 'prober closed' });
  }

  private drain(): void {
    for (;;) {
      let got: [number, string] | null;
      try {
        got = this.closed ? null : this.addon.recv(this.handle, this.buffer);
      } catch {
        // A socket error (none is expected without IP_RECVERR) must not crash the daemon: the probes time out.
        return;
      }
      if (!got) return;
      const event = parseIcmp(this.buffer.subarray(0, got[0]));
      if (!event || event.id !== this.id) continue;
      const p = this.pending.get(event.seq);
      if (!p) continue;
      if (event.kind === 'reply' && event.from === p.target) {
        p.finish({ ok: true, rttMs: performance.now() - p.sentAt });
      } else if (event.kind === 'error' && event.target === p.target && event.from === p.target) {
        // An error from the target itself (a REJECT rule, "protocol unreachable") crossed the whole path.
        p.finish({ ok: true, rttMs: performance.now() - p.sentAt });
      } else if (event.kind === 'error' && event.target === p.target) {
        p.finish({ ok: false, error: `${event.error} (from ${event.from})`, refusal: { words: event.error, from: event.from } });
      }
    }
  }
}

class TcpProber implements Prober {
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly source: ProbeSource, private readonly port: number) {}

  probe(target: ProbeTarget, waitMs: number): Promise<ProbeReply> {
    return new Promise((resolve) => {
      const sentAt = performance.now();
      const socket = net.connect({ host: target.ip, port: this.port, localAddress: this.source.address, family: 4 });
      this.sockets.add(socket);
      const finish = settleOnce(resolve, waitMs, () => {
        this.sockets.delete(socket);
        // A connected socket ends with RST, not FIN: no TIME_WAIT left by 20 probes a second.
        // (resetAndDestroy on a socket still connecting would wait for the connect: minutes.)
        if (socket.connecting || socket.destroyed) socket.destroy();
        else socket.resetAndDestroy();
      });
      socket.once('connect', () => finish({ ok: true, ...handshakeRtt(performance.now() - sentAt) }));
      socket.once('error', (err: NodeJS.ErrnoException) => {
        // A refusal (RST to the SYN) comes from the target itself: the path through the uplink works.
        if (err.code === 'ECONNREFUSED') finish({ ok: true, ...handshakeRtt(performance.now() - sentAt) });
        else finish(connectFailure(err));
      });
    });
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

class HttpProber implements Prober {
  private readonly requests = new Set<http.ClientRequest>();

  constructor(
    private readonly method: 'http' | 'https',
    private readonly source: ProbeSource,
    private readonly port: number,
  ) {}

  probe(target: ProbeTarget, waitMs: number): Promise<ProbeReply> {
    return new Promise((resolve) => {
      const sentAt = performance.now();
      const named = target.name !== target.ip;
      const options: https.RequestOptions = {
        host: target.ip,
        port: this.port,
        localAddress: this.source.address,
        family: 4,
        method: 'HEAD',
        path: '/',
        agent: false,
        headers: { Host: target.name, 'User-Agent': 'uplinkd-health' },
        // Reachability, not identity, is what is probed: any TLS peer that answers will do.
        rejectUnauthorized: false,
        ...(named && { servername: target.name }),
      };
      const req = (this.method === 'https' ? https : http).request(options);
      this.requests.add(req);
      const finish = settleOnce(resolve, waitMs, () => {
        this.requests.delete(req);
        req.destroy();
      });
      // The RTT sample is the TCP handshake (one round trip); the request, TLS and the server's work
      // take more round trips and the server's time, and the response is the proof of life.
      let handshake: { rttMs?: number } = {};
      req.once('socket', (socket) => socket.once('connect', () => (handshake = handshakeRtt(performance.now() - sentAt))));
      req.once('response', (res) => {
        res.resume();
        finish({ ok: true, ...handshake });
      });
      req.once('error', (err) => finish(connectFailure(err)));
      req.end();
    });
  }

  close(): void {
    for (const r of this.requests) r.destroy();
    this.requests.clear();
  }
}

class DnsProber implements Prober {
  private readonly socket: dgram.Socket;
  private readonly pending = new Map<number, Pending>();
  private failure: string | undefined;
  // Query ids count up (from a random start), as ICMP sequence numbers do: an id comes back only
  // after 65536 queries, so a late answer to an old query is never taken for a new one's.
  private nextId = Math.floor(Math.random() * 0x10000);

  constructor(source: ProbeSource, private readonly port: number) {
    this.socket = dgram.createSocket('udp4');
    this.socket.on('error', (err) => {
      this.failure = describeErrno(err);
      for (const p of [...this.pending.values()]) p.finish({ ok: false, error: this.failure });
    });
    this.socket.on('message', (msg, rinfo) => {
      const id = dnsResponseId(msg);
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p || rinfo.address !== p.target || rinfo.port !== this.port) return;
      // Any response code (NXDOMAIN is the usual one) proves the path.
      p.finish({ ok: true, rttMs: performance.now() - p.sentAt });
    });
    this.socket.bind({ address: source.address, port: 0 });
  }

  probe(target: ProbeTarget, waitMs: number): Promise<ProbeReply> {
    return new Promise((resolve) => {
      if (this.failure) return resolve({ ok: false, error: this.failure });
      const id = this.nextId;
      this.nextId = (this.nextId + 1) & 0xffff;
      const finish = settleOnce(resolve, waitMs, () => this.pending.delete(id));
      this.pending.set(id, { target: target.ip, sentAt: performance.now(), finish });
      this.socket.send(dnsQuery(id), this.port, target.ip, (err) => {
        if (err) finish({ ok: false, error: describeErrno(err) });
      });
    });
  }

  close(): void {
    for (const p of [...this.pending.values()]) p.finish({ ok: false, error: 'prober closed' });
    try {
      this.socket.close();
    } catch {
      // already closed after a bind error
    }
  }
}
