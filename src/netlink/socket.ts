// Request/dump client and notification subscriber over the `netlink` package's RawNetlinkSocket.
// The package gives us a bound NETLINK_ROUTE socket with message peeking (any datagram size);
// framing, sequence numbers and acks are ours.
// The socket class alone: the package's index also loads its genl/nl80211/rt/wg layers (~15 ms of start-up).
import { RawNetlinkSocket } from 'netlink/dist/raw';
import { performance } from 'node:perf_hooks';
import { UplinkdError } from '../errors';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST } from './constants';
import { enableNetlinkFeatures } from './sockopt';
import { decodeDone, decodeError, encodeMessage, splitDatagram, type NlError, type NlMessage } from './wire';

const NETLINK_ROUTE = 0;

/** Where a datagram came from (sockaddr_nl): the kernel is port 0; `truncated` is the datagram's real size when MSG_TRUNC cut it. */
export interface DatagramInfo {
  port: number;
  truncated?: number;
}

/** The part of RawNetlinkSocket we use (tests substitute a fake). */
export interface RawSocketLike {
  send(msg: Uint8Array, options: { port?: number }, callback: (error?: Error & { code?: string }) => void): void;
  on(event: 'message' | 'truncatedMessage', listener: (msg: Buffer, info?: DatagramInfo) => void): unknown;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): unknown;
  addMembership(group: number): void;
  /** SO_RCVBUF: `size` in bytes (the kernel doubles it and caps it at net.core.rmem_max). */
  setRecvBufferSize(size: number): unknown;
  address(): { port: number };
  unref(): void;
  close(): void;
  /** NETLINK_GET_STRICT_CHK is on: the kernel honours dump requests' filters (set by openRouteSocket). */
  strictCheck?: boolean;
}

export type SocketFactory = () => RawSocketLike;

/** A NETLINK_ROUTE socket with extended ACKs and strict checking turned on where the kernel and addon allow. */
export const openRouteSocket: SocketFactory = () => {
  const sock = new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: 0, sendBufferSize: 0 });
  const features = enableNetlinkFeatures(sock.address().port);
  return Object.assign(sock, { strictCheck: features.strictCheck });
};

export interface ClientOptions {
  /** Per request, ms (default 5000), counted from when the request is sent. */
  timeoutMs?: number;
  /** Most requests outstanding at once (default REQUEST_WINDOW). */
  window?: number;
  socket?: SocketFactory;
  /** Where dropped datagrams (foreign sender, truncated, malformed) are reported (default: stderr). */
  log?: (line: string) => void;
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
/** Tries of a dump the kernel keeps flagging NLM_F_DUMP_INTR (the objects changed while it ran). */
export const DUMP_TRIES = 3;
/**
 * After ENOBUFS on the request socket (acks were dropped): the acks already queued are read within
 * this many ms; requests still unanswered then lost theirs and fail with ENOBUFS (the caller retries
 * from a fresh snapshot: resending blindly could undo a later change to the same object).
 */
const LOST_ACK_GRACE_MS = 20;

type Outcome = { replies: NlMessage[]; interrupted: boolean };

const stderrLog = (line: string): void => { process.stderr.write(`${line}\n`); };

interface Op {
  type: number;
  flags: number;
  payload: Buffer;
  dump: boolean;
  /** For a dump: which replies to keep (a large dump is filtered as it arrives). */
  keep?: (m: NlMessage) => boolean;
  resolve(r: Outcome): void;
  reject(e: Error): void;
}

interface Pending {
  op: Op;
  replies: NlMessage[];
  interrupted: boolean;
  /** performance.now() (ms) after which it times out. */
  deadline: number;
}

function requestFailed(type: number, errno: string): UplinkdError {
  return new UplinkdError('netlink', `netlink request (type ${type}) failed: ${errno}`, { errno });
}

/** A refusal with the kernel's extended ACK text, when it sent one: "EINVAL (Nexthop id does not exist)". */
function refused(type: number, err: NlError): UplinkdError {
  const why = err.message ? `${err.code} (${err.message}${err.offset !== undefined ? `, attribute at byte ${err.offset}` : ''})` : err.code;
  return new UplinkdError('netlink', `netlink request (type ${type}) failed: ${why}`,
    { errno: err.code, ...(err.message ? { kernelMessage: err.message } : {}) });
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
  private readonly log: (line: string) => void;
  /** Armed after ENOBUFS: then the requests sent before it that are still unanswered lost their acks. */
  private lostAckTimer: NodeJS.Timeout | undefined;

  constructor(options: ClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.window = Math.max(1, options.window ?? REQUEST_WINDOW);
    this.log = options.log ?? stderrLog;
    this.sock = (options.socket ?? openRouteSocket)();
    // The socket must not keep a CLI alive; the timeout timer does while a request waits.
    this.sock.unref();
    try {
      this.sock.setRecvBufferSize(REQUEST_RCVBUF);
    } catch {
      // The default buffer holds the window's acks too; this is headroom.
    }
    this.sock.on('message', (buf, info) => this.onDatagram(buf, info));
    this.sock.on('truncatedMessage', (buf, info) => this.onDatagram(buf, info));
    this.sock.on('error', (err) => this.onSocketError(err));
  }

  /** The kernel applies dump requests' filters (NETLINK_GET_STRICT_CHK is on); else every object comes back. */
  get strictCheck(): boolean {
    return this.sock.strictCheck === true;
  }

  /** Send one message with NLM_F_REQUEST|NLM_F_ACK|flags; resolves with any replies once acked. */
  async request(type: number, flags: number, payload: Buffer): Promise<NlMessage[]> {
    return (await this.enqueue(type, NLM_F_REQUEST | NLM_F_ACK | flags, payload, false)).replies;
  }

  /**
   * Dump request; repeated when the kernel flags it NLM_F_DUMP_INTR (objects changed while it ran,
   * so it may miss or repeat some) or a part of it was lost (truncated datagram). After DUMP_TRIES
   * such tries it rejects with UplinkdError('netlink', ..., { errno: 'EINTR' }): never an inconsistent answer.
   */
  async dump(type: number, payload: Buffer, keep?: (m: NlMessage) => boolean): Promise<NlMessage[]> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.enqueue(type, NLM_F_REQUEST | NLM_F_DUMP, payload, true, keep);
      if (!r.interrupted) return r.replies;
      if (attempt >= DUMP_TRIES) {
        throw new UplinkdError('netlink', `netlink dump (type ${type}) interrupted ${attempt} times in a row: objects keep changing`,
          { errno: 'EINTR' });
      }
    }
  }

  /**
   * Closes the socket: every pending and queued request is rejected with UplinkdError('netlink', closed); idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.lostAckTimer) clearTimeout(this.lostAckTimer);
    this.rejectPending(closedError);
    for (const op of this.waiting.splice(0)) op.reject(closedError());
    this.sock.close();
  }

  /**
   * Queues the message, which leaves in call order: at once on an idle socket (no delay for a lone
   * request or dump), else once this turn of the event loop is over, with whatever else was asked meanwhile.
   */
  private enqueue(type: number, flags: number, payload: Buffer, dump: boolean, keep?: (m: NlMessage) => boolean): Promise<Outcome> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      this.waiting.push({ type, flags, payload, dump, keep, resolve, reject });
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

  /**
   * ENOBUFS: the receive queue overflowed and some acks were dropped; the kernel reports it before
   * the datagrams still queued, so those answers come next. Only the requests whose ack never comes
   * fail (with ENOBUFS); the others settle normally. Any other socket error: nothing says whose answer
   * is lost, so every outstanding request fails with it.
   */
  private onSocketError(err: Error & { code?: string }): void {
    const errno = err.code ?? err.message;
    if (errno !== 'ENOBUFS') {
      this.rejectPending((op) => requestFailed(op.type, errno));
      return;
    }
    this.log(`netlink request socket overrun (ENOBUFS): requests whose acks were dropped fail and are retried by the caller`);
    const suspects = [...this.pending.keys()].filter((seq) => !this.pending.get(seq)!.op.dump);
    if (suspects.length === 0) return;
    if (this.lostAckTimer) clearTimeout(this.lostAckTimer);
    this.lostAckTimer = setTimeout(() => {
      this.lostAckTimer = undefined;
      for (const seq of suspects) this.settle(seq, (p) => p.op.reject(requestFailed(p.op.type, 'ENOBUFS')));
    }, LOST_ACK_GRACE_MS);
  }

  /**
   * One datagram from the socket. Only the kernel (port 0) is listened to; a datagram cut short
   * (MSG_TRUNC, or a length running past its end) is logged, its whole messages are still used,
   * and the request whose answer was cut fails (a dump is retried). Nothing here throws.
   */
  private onDatagram(buf: Buffer, info?: DatagramInfo): void {
    if (info && info.port !== 0) {
      this.log(`ignoring a netlink datagram from port ${info.port}: only the kernel (port 0) answers requests`);
      return;
    }
    if (this.pending.size === 0) return; // a late answer to a request that timed out
    const { messages, error, brokenSeq } = splitDatagram(buf);
    const truncated = info?.truncated !== undefined;
    if (truncated) this.log(`netlink datagram truncated: ${buf.length} of ${info!.truncated} bytes read`);
    for (const m of messages) this.onMessage(m);
    if (!error && !truncated) return;
    if (error) this.log(`netlink answer cut short: ${error.message}`);
    const lost = error && brokenSeq !== undefined && this.pending.has(brokenSeq) ? [brokenSeq] : [...this.pending.keys()];
    for (const seq of lost) {
      const p = this.pending.get(seq);
      if (!p) continue;
      // A dump goes on to its NLMSG_DONE; it then starts over. A lost ack is a failed request.
      if (p.op.dump) p.interrupted = true;
      else this.settle(seq, () => p.op.reject(new UplinkdError('netlink', `netlink answer to request (type ${p.op.type}) was cut short`, { errno: 'EBADMSG' })));
    }
  }

  private onMessage(m: NlMessage): void {
    const p = this.pending.get(m.seq);
    if (!p || m.type === NLMSG_NOOP) return;
    if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
    if (m.type === NLMSG_ERROR) {
      let err: NlError;
      try {
        err = decodeError(m);
      } catch (e) {
        this.settle(m.seq, () => p.op.reject(e as UplinkdError));
        return;
      }
      this.settle(m.seq, () => (err.errno === 0 ? p.op.resolve(outcomeOf(p)) : p.op.reject(refused(p.op.type, err))));
    } else if (m.type === NLMSG_DONE) {
      const err = decodeDone(m);
      this.settle(m.seq, () => (err.errno ? p.op.reject(refused(p.op.type, err)) : p.op.resolve(outcomeOf(p))));
    } else if (m.type === NLMSG_OVERRUN) {
      this.settle(m.seq, () => p.op.reject(requestFailed(p.op.type, 'NLMSG_OVERRUN')));
    } else if (!p.op.keep || p.op.keep(m)) {
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
  /**
   * Resolves once every notification the kernel queued before this call has been handed to
   * `onMessages`: it sends an NLMSG_NOOP request with NLM_F_ACK on the subscriber socket itself, and
   * the kernel queues its ack behind them (net/netlink/af_netlink.c netlink_rcv_skb acks control
   * messages). Rejects with UplinkdError('netlink', ..., { errno: 'ETIMEDOUT' }) after SYNC_TIMEOUT_MS.
   */
  sync(): Promise<void>;
  close(): void;
}

/** A sync() whose ack has not come by then fails (ms); the caller falls back to dumping. */
export const SYNC_TIMEOUT_MS = 1000;

/**
 * Join rtnetlink multicast groups on a socket of its own. Each datagram's messages go to
 * `onMessages`. Notifications were lost, and the caller must resync, when `onOverrun(reason)` is
 * called: ENOBUFS (the queue overflowed) or a datagram cut short (MSG_TRUNC or a length running past
 * its end; its whole messages are still delivered first). Datagrams not from the kernel (port 0)
 * are dropped and reported to `onError`, as are other socket errors. Never throws from a callback.
 */
export function subscribe(
  groups: number[],
  onMessages: (msgs: NlMessage[]) => void,
  onOverrun: (reason: string) => void,
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
  /** sync() calls waiting for their ack, by sequence number. */
  const syncs = new Map<number, { resolve(): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  let seq = Math.floor(Math.random() * 0x7fffffff);
  const onDatagram = (buf: Buffer, info?: DatagramInfo) => {
    if (info && info.port !== 0) {
      onError(new UplinkdError('netlink', `ignoring a netlink notification from port ${info.port}: only the kernel (port 0) is trusted`));
      return;
    }
    const { messages: all, error } = splitDatagram(buf);
    let messages = all;
    if (syncs.size > 0) {
      messages = [];
      for (const m of all) {
        const waiter = m.type === NLMSG_ERROR ? syncs.get(m.seq) : undefined;
        if (!waiter) {
          messages.push(m);
          continue;
        }
        // The notifications before the ack were delivered first (above, in order).
        if (messages.length > 0) onMessages(messages.splice(0));
        syncs.delete(m.seq);
        clearTimeout(waiter.timer);
        waiter.resolve();
      }
    }
    if (messages.length > 0) onMessages(messages);
    if (info?.truncated !== undefined) onOverrun(`netlink notification truncated (${buf.length} of ${info.truncated} bytes): full resync`);
    else if (error) onOverrun(`${error.message}: full resync`);
  };
  sock.on('message', onDatagram);
  sock.on('truncatedMessage', onDatagram);
  sock.on('error', (err) => {
    if (err.code === 'ENOBUFS') onOverrun('netlink socket overrun (ENOBUFS), events were lost: full resync');
    else onError(new UplinkdError('netlink', `netlink subscriber error: ${err.code ?? err.message}`, { errno: err.code }));
  });
  let closed = false;
  return {
    sync() {
      if (closed) return Promise.reject(closedError());
      seq = (seq + 1) >>> 0 || 1;
      const mySeq = seq;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          syncs.delete(mySeq);
          reject(new UplinkdError('netlink', `no ack to a sync on the subscriber socket within ${SYNC_TIMEOUT_MS} ms`, { errno: 'ETIMEDOUT' }));
        }, SYNC_TIMEOUT_MS);
        syncs.set(mySeq, { resolve, reject, timer });
        const fail = (why: string) => {
          if (!syncs.delete(mySeq)) return;
          clearTimeout(timer);
          reject(requestFailed(NLMSG_NOOP, why));
        };
        try {
          sock.send(encodeMessage(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, mySeq, 0, Buffer.alloc(0)), { port: 0 }, (err) => {
            if (err) fail(err.code ?? err.message);
          });
        } catch (e) {
          fail((e as Error).message);
        }
      });
    },
    close() {
      if (!closed) sock.close();
      closed = true;
      for (const w of syncs.values()) {
        clearTimeout(w.timer);
        w.reject(closedError());
      }
      syncs.clear();
    },
  };
}
