// Request/dump client and notification subscriber over the `netlink` package's RawNetlinkSocket.
// The package gives us a bound NETLINK_ROUTE socket with message peeking (any datagram size);
// framing, sequence numbers and acks are ours.
import { RawNetlinkSocket } from 'netlink';
import { UplinkdError } from '../errors';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST } from './constants';
import { decodeError, doneErrno, encodeMessage, errnoName, parseMessages, type NlMessage } from './wire';

const NETLINK_ROUTE = 0;

/** The part of RawNetlinkSocket we use (tests substitute a fake). */
export interface RawSocketLike {
  send(msg: Uint8Array, options: { port?: number }, callback: (error?: Error & { code?: string }) => void): void;
  on(event: 'message', listener: (msg: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): unknown;
  addMembership(group: number): void;
  setRecvBufferSize(size: number): unknown;
  address(): { port: number };
  unref(): void;
  close(): void;
}

export type SocketFactory = () => RawSocketLike;

export const openRouteSocket: SocketFactory = () =>
  new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: 0, sendBufferSize: 0 });

export interface ClientOptions {
  /** Per request, ms (default 5000). */
  timeoutMs?: number;
  socket?: SocketFactory;
}

interface Pending {
  seq: number;
  type: number;
  replies: NlMessage[];
  interrupted: boolean;
  resolve(r: { replies: NlMessage[]; interrupted: boolean }): void;
  reject(e: Error): void;
}

function requestFailed(type: number, errno: string): UplinkdError {
  return new UplinkdError('netlink', `netlink request (type ${type}) failed: ${errno}`, { errno });
}

const closedError = () => new UplinkdError('netlink', 'netlink socket closed', { errno: 'ECANCELED' });

/**
 * One request at a time over one socket (the kernel runs one dump per socket anyway).
 * Rejections are UplinkdError('netlink', ..., { errno: 'EEXIST' | 'ETIMEDOUT' | ... }).
 */
export class NetlinkClient {
  private readonly sock: RawSocketLike;
  private readonly timeoutMs: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: ClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.sock = (options.socket ?? openRouteSocket)();
    // The socket must not keep a CLI alive; a pending request's timer does while it waits.
    this.sock.unref();
    this.sock.on('message', (buf) => this.onDatagram(buf));
    this.sock.on('error', (err) => {
      const p = this.pending;
      if (p) p.reject(requestFailed(p.type, err.code ?? err.message));
    });
  }

  /** Send one message with NLM_F_REQUEST|NLM_F_ACK|flags; resolves with any replies once acked. */
  async request(type: number, flags: number, payload: Buffer): Promise<NlMessage[]> {
    return (await this.enqueue(type, NLM_F_REQUEST | NLM_F_ACK | flags, payload)).replies;
  }

  /** Dump request; repeated (up to 3 tries) when the kernel flags it as interrupted by a change. */
  async dump(type: number, payload: Buffer): Promise<NlMessage[]> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.enqueue(type, NLM_F_REQUEST | NLM_F_DUMP, payload);
      if (!r.interrupted || attempt >= 3) return r.replies;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending?.reject(closedError());
    this.sock.close();
  }

  private enqueue(type: number, flags: number, payload: Buffer): Promise<{ replies: NlMessage[]; interrupted: boolean }> {
    const run = () => this.run(type, flags, payload);
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private run(type: number, flags: number, payload: Buffer): Promise<{ replies: NlMessage[]; interrupted: boolean }> {
    if (this.closed) return Promise.reject(closedError());
    this.seq = (this.seq + 1) >>> 0 || 1;
    const seq = this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(() => reject(new UplinkdError('netlink',
        `netlink request (type ${type}) timed out after ${this.timeoutMs} ms`, { errno: 'ETIMEDOUT' }))), this.timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        if (this.pending?.seq === seq) this.pending = undefined;
        settle();
      };
      const pending: Pending = {
        seq, type, replies: [], interrupted: false,
        resolve: (r) => done(() => resolve(r)),
        reject: (e) => done(() => reject(e)),
      };
      this.pending = pending;
      try {
        this.sock.send(encodeMessage(type, flags, seq, 0, payload), { port: 0 }, (err) => {
          if (err && this.pending === pending) pending.reject(requestFailed(type, err.code ?? err.message));
        });
      } catch (e) {
        pending.reject(requestFailed(type, (e as Error).message));
      }
    });
  }

  private onDatagram(buf: Buffer): void {
    const p = this.pending;
    if (!p) return; // a late answer to a request that timed out
    let msgs: NlMessage[];
    try {
      msgs = parseMessages(buf);
    } catch (e) {
      p.reject(e as Error);
      return;
    }
    for (const m of msgs) {
      if (m.seq !== p.seq || m.type === NLMSG_NOOP) continue;
      if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
      if (m.type === NLMSG_ERROR) {
        const err = decodeError(m);
        if (err.errno === 0) p.resolve({ replies: p.replies, interrupted: p.interrupted });
        else p.reject(requestFailed(p.type, err.code));
        return;
      }
      if (m.type === NLMSG_DONE) {
        const errno = doneErrno(m);
        if (errno) p.reject(requestFailed(p.type, errnoName(errno)));
        else p.resolve({ replies: p.replies, interrupted: p.interrupted });
        return;
      }
      if (m.type === NLMSG_OVERRUN) {
        p.reject(requestFailed(p.type, 'NLMSG_OVERRUN'));
        return;
      }
      p.replies.push(m);
    }
  }
}

export interface SubscriberOptions {
  /** Requested SO_RCVBUF in bytes (the kernel caps it at net.core.rmem_max). Default 4 MiB. */
  recvBufferSize?: number;
  socket?: SocketFactory;
}

export interface Subscription {
  close(): void;
}

/**
 * Join rtnetlink multicast groups on a socket of its own. Each datagram's messages go to
 * `onMessages`; a malformed datagram or a socket error goes to `onError`; ENOBUFS
 * (notifications were dropped) calls `onOverrun`, after which the caller must resync.
 */
export function subscribe(
  groups: number[],
  onMessages: (msgs: NlMessage[]) => void,
  onOverrun: () => void,
  onError: (e: Error) => void,
  options: SubscriberOptions = {},
): Subscription {
  const sock = (options.socket ?? openRouteSocket)();
  try {
    sock.setRecvBufferSize(options.recvBufferSize ?? 4 << 20);
    for (const g of groups) sock.addMembership(g);
  } catch (e) {
    sock.close();
    throw new UplinkdError('netlink', `cannot subscribe to rtnetlink groups: ${(e as Error).message}`, { cause: e });
  }
  sock.on('message', (buf) => {
    let msgs: NlMessage[];
    try {
      msgs = parseMessages(buf);
    } catch (e) {
      onError(e as Error);
      return;
    }
    onMessages(msgs);
  });
  sock.on('error', (err) => {
    if (err.code === 'ENOBUFS') onOverrun();
    else onError(new UplinkdError('netlink', `netlink subscriber error: ${err.code ?? err.message}`, { errno: err.code }));
  });
  let closed = false;
  return {
    close() {
      if (!closed) sock.close();
      closed = true;
    },
  };
}
