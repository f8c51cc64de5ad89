// Request/dump client and notification subscriber over the `netlink` package's RawNetlinkSocket.
// The package gives us a bound NETLINK_ROUTE socket with message peeking (any datagram size);
// framing, sequence numbers and acks are ours.
// The socket class alone: the package's index also loads its genl/nl80211/rt/wg layers (~15 ms of start-up).
import { RawNetlinkSocket } from 'netlink/dist/raw';
import { performance } from 'node:perf_hooks';
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
  /** Per request, ms (default 5000), counted from when the request is sent. */
  timeoutMs?: number;
  /** Most requests outstanding at once (default REQUEST_WINDOW). */
  window?: number;
  socket?: SocketFactory;
}

/**
 * Most unanswered requests on one socket. Each queued ack is an skb of about 1 KB truesize charged to
 * the receive buffer (at least 208 KB); past it the kernel drops the ack and the request could only time out.
 */
export const REQUEST_WINDOW = 64;
/** Asked for the request socket (the kernel caps it at net.core.rmem_max and doubles it): headroom for acks. */
const REQUEST_RCVBUF = 1 << 20;
/** Requests sent together share one datagram up to this size (the kernel refuses more than SO_SNDBUF, >= 208 KB by default). */
const MAX_DATAGRAM = 32 << 10;

type Outcome = { replies: NlMessage[]; interrupted: boolean };

interface Op {
  type: number;
  flags: number;
  payload: Buffer;
  dump: boolean;
  resolve(r: Outcome): void;
  reject(e: Error): void;
}

interface Pending {
  op: Op;
  replies: NlMessage[];
  interrupted: boolean;
  /** performance.now() after which it times out. */
  deadline: number;
}

function requestFailed(type: number, errno: string): UplinkdError {
  return new UplinkdError('netlink', `netlink request (type ${type}) failed: ${errno}`, { errno });
}

const outcomeOf = (p: Pending): Outcome => ({ replies: p.replies, interrupted: p.interrupted });

const closedError = () => new UplinkdError('netlink', 'netlink socket closed', { errno: 'ECANCELED' });

/**
 * Requests over one socket, pipelined: up to `window` unanswered at once, matched to their acks by
 * sequence number. Requests made while others are outstanding leave together, in call order, in one
 * datagram after the current turn of the event loop (the kernel handles a datagram's messages one after
 * another, each with its own ack or error); datagrams leave in call order too (RawNetlinkSocket writes
 * FIFO), so the kernel sees every request in call order. A dump runs alone: after the requests before it, before the ones after it
 * (the kernel runs one dump per socket, and its replies are not acks).
 * Rejections are UplinkdError('netlink', ..., { errno: 'EEXIST' | 'ETIMEDOUT' | ... }).
 */
export class NetlinkClient {
  private readonly sock: RawSocketLike;
  private readonly timeoutMs: number;
  private readonly window: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  /** Sent and unanswered, by sequence number; in send order, which is deadline order. */
  private readonly pending = new Map<number, Pending>();
  /** Not sent yet, in call order. */
  private readonly waiting: Op[] = [];
  private dumping = false;
  private flushQueued = false;
  /** Armed for the oldest pending request's deadline while any is pending. */
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: ClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.window = Math.max(1, options.window ?? REQUEST_WINDOW);
    this.sock = (options.socket ?? openRouteSocket)();
    // The socket must not keep a CLI alive; the timeout timer does while a request waits.
    this.sock.unref();
    try {
      this.sock.setRecvBufferSize(REQUEST_RCVBUF);
    } catch {
      // The default buffer holds the window's acks too; this is headroom.
    }
    this.sock.on('message', (buf) => this.onDatagram(buf));
    // ENOBUFS and the like: an answer may be lost, and nothing says whose.
    this.sock.on('error', (err) => this.rejectPending((op) => requestFailed(op.type, err.code ?? err.message)));
  }

  /** Send one message with NLM_F_REQUEST|NLM_F_ACK|flags; resolves with any replies once acked. */
  async request(type: number, flags: number, payload: Buffer): Promise<NlMessage[]> {
    return (await this.enqueue(type, NLM_F_REQUEST | NLM_F_ACK | flags, payload, false)).replies;
  }

  /** Dump request; repeated (up to 3 tries) when the kernel flags it as interrupted by a change. */
  async dump(type: number, payload: Buffer): Promise<NlMessage[]> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.enqueue(type, NLM_F_REQUEST | NLM_F_DUMP, payload, true);
      if (!r.interrupted || attempt >= 3) return r.replies;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectPending(closedError);
    for (const op of this.waiting.splice(0)) op.reject(closedError());
    this.sock.close();
  }

  /**
   * Queues the message, which leaves in call order: at once on an idle socket (no delay for a lone
   * request or dump), else once this turn of the event loop is over, with whatever else was asked meanwhile.
   */
  private enqueue(type: number, flags: number, payload: Buffer, dump: boolean): Promise<Outcome> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      this.waiting.push({ type, flags, payload, dump, resolve, reject });
      if (this.pending.size === 0 && this.waiting.length === 1) this.flush();
      else this.schedule();
    });
  }

  /**
   * Sends what may go after the current turn (I/O callbacks and their promise reactions), so that
   * requests made meanwhile (a caller refilling the window as acks arrive) share a datagram.
   */
  private schedule(): void {
    if (this.flushQueued || this.waiting.length === 0) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    const batch: Op[] = [];
    while (!this.closed && !this.dumping && this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (next.dump) {
        if (batch.length > 0 || this.pending.size > 0) break;
        this.waiting.shift();
        this.transmit([next]);
        return;
      }
      if (this.pending.size + batch.length >= this.window) break;
      batch.push(this.waiting.shift()!);
    }
    if (batch.length > 0) this.transmit(batch);
  }

  /** Sends `ops` in order, in as few datagrams as MAX_DATAGRAM allows. */
  private transmit(ops: Op[]): void {
    const deadline = performance.now() + this.timeoutMs;
    let datagram: { seqs: number[]; msgs: Buffer[]; bytes: number } = { seqs: [], msgs: [], bytes: 0 };
    const send = () => {
      const { seqs, msgs } = datagram;
      const failed = (errno: string) => {
        for (const seq of seqs) this.settle(seq, (p) => p.op.reject(requestFailed(p.op.type, errno)));
      };
      try {
        this.sock.send(msgs.length === 1 ? msgs[0]! : Buffer.concat(msgs), { port: 0 }, (err) => {
          if (err) failed(err.code ?? err.message);
        });
      } catch (e) {
        failed((e as Error).message);
      }
    };
    for (const op of ops) {
      this.seq = (this.seq + 1) >>> 0 || 1;
      const msg = encodeMessage(op.type, op.flags, this.seq, 0, op.payload);
      if (datagram.msgs.length > 0 && datagram.bytes + msg.length > MAX_DATAGRAM) {
        send();
        datagram = { seqs: [], msgs: [], bytes: 0 };
      }
      this.pending.set(this.seq, { op, replies: [], interrupted: false, deadline });
      if (op.dump) this.dumping = true;
      datagram.seqs.push(this.seq);
      datagram.msgs.push(msg);
      datagram.bytes += msg.length;
    }
    send();
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer || this.closed) return;
    const oldest = this.pending.values().next().value as Pending | undefined;
    if (!oldest) return;
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(oldest.deadline - performance.now())));
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [seq, p] of this.pending) {
      if (p.deadline > now) break;
      this.settle(seq, () => p.op.reject(new UplinkdError('netlink',
        `netlink request (type ${p.op.type}) timed out after ${this.timeoutMs} ms`, { errno: 'ETIMEDOUT' })));
    }
    this.armTimer();
  }

  /** Ends the request `seq` if it is still outstanding; waiting ones may go next. */
  private settle(seq: number, outcome: (p: Pending) => void): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    if (p.op.dump) this.dumping = false;
    if (this.pending.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    outcome(p);
    this.schedule();
  }

  private rejectPending(error: (op: Op) => Error): void {
    for (const seq of [...this.pending.keys()]) this.settle(seq, (p) => p.op.reject(error(p.op)));
  }

  private onDatagram(buf: Buffer): void {
    if (this.pending.size === 0) return; // a late answer to a request that timed out
    let msgs: NlMessage[];
    try {
      msgs = parseMessages(buf);
    } catch (e) {
      this.rejectPending(() => e as Error); // whose answer it was is unknown
      return;
    }
    for (const m of msgs) {
      const p = this.pending.get(m.seq);
      if (!p || m.type === NLMSG_NOOP) continue;
      if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
      if (m.type === NLMSG_ERROR) {
        const err = decodeError(m);
        this.settle(m.seq, () => (err.errno === 0 ? p.op.resolve(outcomeOf(p)) : p.op.reject(requestFailed(p.op.type, err.code))));
      } else if (m.type === NLMSG_DONE) {
        const errno = doneErrno(m);
        this.settle(m.seq, () => (errno ? p.op.reject(requestFailed(p.op.type, errnoName(errno))) : p.op.resolve(outcomeOf(p))));
      } else if (m.type === NLMSG_OVERRUN) {
        this.settle(m.seq, () => p.op.reject(requestFailed(p.op.type, 'NLMSG_OVERRUN')));
      } else {
        p.replies.push(m);
      }
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
