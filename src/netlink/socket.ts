// Request/dump client and notification subscriber over the `netlink` package's RawNetlinkSocket.
// The package gives us a bound NETLINK_ROUTE socket with message peeking (any datagram size);
// framing, sequence numbers and acks are ours.
// The socket class alone: the package's index also loads its genl/nl80211/rt/wg layers (~15 ms of start-up).
import { RawNetlinkSocket } from 'netlink/dist/raw';
import { performance } from 'node:perf_hooks';
import { UplinkdError } from '../errors';
import { NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST } from './constants';
import type { SockFilterInsn } from './filter';
import { addonFailure, attachSocketFilter, countOverruns, enableNetlinkFeatures, forceRecvBuffer } from './sockopt';
import { decodeDone, decodeError, encodeMessage, splitDatagram, type NlError, type NlMessage } from './wire';

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
  /** SO_RCVBUF as the kernel keeps it (bytes, already doubled). */
  getRecvBufferSize?(): number;
  /** SO_RCVBUFFORCE of `size` bytes (past net.core.rmem_max; set by openRouteSocket): undefined when set, else why not. */
  forceRecvBufferSize?(size: number): string | undefined;
  /**
   * Packets the kernel dropped for a full receive buffer so far (sk_drops), present when openRouteSocket set
   * NETLINK_NO_ENOBUFS: such a socket reports overflow only here, never as an ENOBUFS error (countOverruns).
   */
  receiveDrops?(): number | undefined;
  /** Attaches a classic BPF program (undefined: detaches it), set by openNetlinkSocket: undefined when done, else why not. */
  setFilter?(program: readonly SockFilterInsn[] | undefined): string | undefined;
  address(): { port: number };
  unref(): void;
  close(): void;
  /** NETLINK_GET_STRICT_CHK is on: the kernel honours dump requests' filters (set by openRouteSocket). */
  strictCheck?: boolean;
}

export type SocketFactory = () => RawSocketLike;

/**
 * A netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER: include/uapi/linux/netlink.h) with extended ACKs,
 * strict checking and NETLINK_NO_ENOBUFS with a drop count turned on where the kernel and addon allow.
 */
export function openNetlinkSocket(protocol: number): RawSocketLike {
  const sock = new RawNetlinkSocket(protocol, { recvBufferSize: 0, sendBufferSize: 0 });
  const port = sock.address().port;
  const features = enableNetlinkFeatures(port, protocol);
  const drops = countOverruns(port, protocol);
  return Object.assign(sock, {
    strictCheck: features.strictCheck,
    forceRecvBufferSize: (size: number) => forceRecvBuffer(port, size, protocol),
    setFilter: (program: readonly SockFilterInsn[] | undefined) => attachSocketFilter(port, program, protocol),
    ...(drops ? { receiveDrops: drops } : {}),
  });
}

/** A NETLINK_ROUTE socket as openNetlinkSocket() sets it up. */
export const openRouteSocket: SocketFactory = () => openNetlinkSocket(NETLINK_ROUTE);

export interface ClientOptions {
  /** Per request, ms (default 5000), counted from when the request is sent. */
  timeoutMs?: number;
  /** Most requests outstanding at once (default: as many as the receive buffer holds answers for, windowFor()). */
  window?: number;
  socket?: SocketFactory;
  /** Where dropped datagrams (foreign sender, truncated, malformed) are reported (default: stderr). */
  log?: (line: string) => void;
}

/** Most unanswered requests when the receive buffer's size is unknown (a test's socket). */
export const REQUEST_WINDOW = 64;
/** Most unanswered requests however large the receive buffer: their answers may take up to this × ANSWER_BYTES (8 MiB), what REQUEST_RCVBUF asks for. */
export const MAX_REQUEST_WINDOW = 4096;
/**
 * Receive buffer charged per answer, bytes: an ack or error is an skb of about 1 KB truesize (an error echoes
 * the request and may carry the extended ACK's text); twice that for margin. Past the buffer the kernel drops
 * answers (ENOBUFS) and their requests fail.
 */
const ANSWER_BYTES = 2048;
/**
 * Asked for the request socket, bytes (the kernel doubles it): SO_RCVBUF is capped at net.core.rmem_max (208 KB
 * by default), so SO_RCVBUFFORCE (root) raises it past that (iproute2 asks for 1 MB for `ip` too).
 */
const REQUEST_RCVBUF = 4 << 20;

/** Requests that may be unanswered at once on a socket whose receive buffer holds `rcvbuf` bytes (SO_RCVBUF as read back). */
export function windowFor(rcvbuf: number): number {
  return Math.min(MAX_REQUEST_WINDOW, Math.max(REQUEST_WINDOW, Math.floor(rcvbuf / ANSWER_BYTES)));
}
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

/** The fallback's log line is written once per process. */
let fallbackLogged = false;

interface Op {
  type: number;
  flags: number;
  payload: Buffer;
  dump: boolean;
  /** Sent without NLM_F_ACK (unless last in its datagram): the kernel answers only a refusal (netlink_rcv_skb). */
  silent: boolean;
  /** For a dump: which replies to keep (a large dump is filtered as it arrives). */
  keep?: (m: NlMessage) => boolean;
  resolve(r: Outcome): void;
  reject(e: Error): void;
}

interface Pending {
  op: Op;
  replies: NlMessage[];
  interrupted: boolean;
  /**
   * Sent without NLM_F_ACK: it succeeded once the answer to a later request on this socket arrives, since the
   * kernel handles a socket's requests in order inside sendmsg and queues a refusal before any later answer.
   */
  unacked: boolean;
  /** Outstanding when ENOBUFS dropped answers: its refusal may be lost, so a later answer proves nothing. */
  suspect: boolean;
  /** Its place in send order (sequence numbers wrap; this does not for 2^53 requests). */
  order: number;
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
 * change() requests go without NLM_F_ACK but the last of each datagram: the kernel answers only refusals, and one
 * ack per datagram confirms the rest, so thousands of changes cost a few dozen answers to read, not one each.
 * That needs the socket's drop count (RawSocketLike.receiveDrops: a dropped refusal must not pass for success);
 * without it (the addon not loaded) every change asks for its own ack.
 * Rejections are UplinkdError('netlink', ..., { errno: 'EEXIST' | 'ETIMEDOUT' | ... }).
 */
export class NetlinkClient {
  private readonly sock: RawSocketLike;
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  /** Sent and unanswered, by sequence number; in send order, which is deadline order. */
  private readonly pending = new Map<number, Pending>();
  /** Not sent yet, in call order, from waiting[waitingHead] (taken by index: shift() is linear, thousands may wait). */
  private waiting: Op[] = [];
  private waitingHead = 0;
  private dumping = false;
  private flushQueued = false;
  /** Armed for the oldest pending request's deadline while any is pending. */
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: (line: string) => void;
  /** Armed after ENOBUFS: then the requests sent before it that are still unanswered lost their acks. */
  private lostAckTimer: NodeJS.Timeout | undefined;
  /** The socket's drop count last read; undefined when it has none, and then change() asks for every ack. */
  private drops: number | undefined;
  /** Requests sent so far: the next one's Pending.order. */
  private sent = 0;
  /** The unacked requests' sequence numbers in send order, from unackedHead: confirming walks only these, once each. */
  private unacked: number[] = [];
  private unackedHead = 0;

  constructor(options: ClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.log = options.log ?? stderrLog;
    this.sock = (options.socket ?? openRouteSocket)();
    // The socket must not keep a CLI alive; the timeout timer does while a request waits.
    this.sock.unref();
    const rcvbuf = this.raiseRecvBuffer();
    this.drops = this.sock.receiveDrops?.();
    if (this.drops === undefined && this.sock.forceRecvBufferSize && !fallbackLogged) {
      fallbackLogged = true;
      const why = addonFailure() || 'the kernel has no SO_MEMINFO drop count';
      this.log(`netlink: ${why}: every change waits for its own ack (slower bulk apply)`);
    }
    this.maxInFlight = Math.max(1, options.window ?? (rcvbuf === undefined ? REQUEST_WINDOW : windowFor(rcvbuf)));
    this.sock.on('message', (buf, info) => this.onDatagram(buf, info));
    this.sock.on('truncatedMessage', (buf, info) => this.onDatagram(buf, info));
    this.sock.on('error', (err) => this.onSocketError(err));
  }

  /** Most requests unanswered at once: ClientOptions.window, else what the receive buffer holds answers for (windowFor()). */
  get window(): number {
    return this.maxInFlight;
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
   * A request that answers nothing but a refusal (RTM_NEW*, RTM_DEL*; flags as NLM_F_CREATE|NLM_F_EXCL), sent with
   * NLM_F_REQUEST|flags and NLM_F_ACK only when it ends its datagram. Resolves once the kernel has handled it
   * without error (its ack, or a later request's answer); rejects as request() does.
   */
  change(type: number, flags: number, payload: Buffer): Promise<void> {
    const silent = this.drops !== undefined;
    return this.enqueue(type, NLM_F_REQUEST | (silent ? 0 : NLM_F_ACK) | flags, payload, false, undefined, silent).then(() => undefined);
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
    const left = this.waiting.slice(this.waitingHead);
    this.waiting = [];
    this.waitingHead = 0;
    for (const op of left) op.reject(closedError());
    this.sock.close();
  }

  /**
   * Queues the message, which leaves in call order: at once on an idle socket (no delay for a lone
   * request or dump), else once this turn of the event loop is over, with whatever else was asked meanwhile.
   */
  private enqueue(type: number, flags: number, payload: Buffer, dump: boolean, keep?: (m: NlMessage) => boolean, silent = false): Promise<Outcome> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      this.waiting.push({ type, flags, payload, dump, silent, keep, resolve, reject });
      if (this.pending.size === 0 && this.waiting.length - this.waitingHead === 1) this.flush();
      else this.schedule();
    });
  }

  /**
   * Sends what may go after the current turn (I/O callbacks and their promise reactions), so that
   * requests made meanwhile (a caller refilling the window as acks arrive) share a datagram.
   */
  private schedule(): void {
    if (this.flushQueued || this.waitingHead === this.waiting.length) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    const batch: Op[] = [];
    while (!this.closed && !this.dumping && this.waitingHead < this.waiting.length) {
      const next = this.waiting[this.waitingHead]!;
      if (next.dump) {
        if (batch.length > 0 || this.pending.size > 0) break;
        this.take();
        this.transmit([next]);
        return;
      }
      if (this.pending.size + batch.length >= this.maxInFlight) break;
      batch.push(this.take());
    }
    if (batch.length > 0) this.transmit(batch);
  }

  /** The oldest waiting op, removed; the array is dropped once all are taken. */
  private take(): Op {
    const op = this.waiting[this.waitingHead++]!;
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    } else if (this.waitingHead >= 1024 && 2 * this.waitingHead >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead); // amortised: never more than the ops taken since
      this.waitingHead = 0;
    }
    return op;
  }

  /** Sends `ops` in order, in as few datagrams as MAX_DATAGRAM allows, each ending with a request that asks for an ack. */
  private transmit(ops: Op[]): void {
    const deadline = performance.now() + this.timeoutMs;
    // Nothing unanswered: no request can have lost an answer, so the count starts afresh (drops in a dump's time are none of its).
    if (this.drops !== undefined && this.pending.size === 0 && !ops[0]?.dump) this.drops = this.sock.receiveDrops?.() ?? this.drops;
    let datagram: { seqs: number[]; msgs: Buffer[]; bytes: number } = { seqs: [], msgs: [], bytes: 0 };
    const send = () => {
      const { seqs, msgs } = datagram;
      const last = this.pending.get(seqs[seqs.length - 1]!)!;
      if (last.unacked) {
        // Its ack confirms the silent requests before it in this datagram.
        last.unacked = false;
        msgs[msgs.length - 1]!.writeUInt16LE(last.op.flags | NLM_F_ACK, 6); // struct nlmsghdr: nlmsg_flags at byte 6
      }
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
      this.pending.set(this.seq, { op, replies: [], interrupted: false, unacked: op.silent, suspect: false, order: this.sent++, deadline });
      if (op.silent) this.unacked.push(this.seq);
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

  /**
   * The answer to `seq` came: the silent requests sent before it were handled without error (see Pending.unacked),
   * except suspects, which the ENOBUFS timer fails. Each unacked request is looked at once.
   */
  private confirmBefore(seq: number): void {
    const answered = this.pending.get(seq);
    if (!answered) return;
    while (this.unackedHead < this.unacked.length) {
      const s = this.unacked[this.unackedHead]!;
      const p = this.pending.get(s);
      if (p && p.order >= answered.order) break;
      this.unackedHead++;
      if (p?.unacked && !p.suspect) this.settle(s, () => p.op.resolve(outcomeOf(p)));
    }
    if (this.unackedHead === this.unacked.length || this.unackedHead >= 1024) {
      this.unacked = this.unacked.slice(this.unackedHead);
      this.unackedHead = 0;
    }
  }

  /**
   * SO_RCVBUF raised to REQUEST_RCVBUF, with SO_RCVBUFFORCE past net.core.rmem_max where the addon and
   * CAP_NET_ADMIN allow; returns the size the kernel keeps (bytes), undefined when the socket cannot say.
   */
  private raiseRecvBuffer(): number | undefined {
    try {
      this.sock.setRecvBufferSize(REQUEST_RCVBUF);
    } catch {
      // The size read back below says what we have.
    }
    const size = this.sock.getRecvBufferSize?.();
    if (size === undefined || size >= 2 * REQUEST_RCVBUF || !this.sock.forceRecvBufferSize) return size;
    const why = this.sock.forceRecvBufferSize(REQUEST_RCVBUF);
    if (why === undefined) return this.sock.getRecvBufferSize!();
    // Without CAP_NET_ADMIN (a read-only command as a user) the smaller window is expected; anything else is news.
    if (!why.includes('EPERM')) {
      this.log(`netlink: the request socket's receive buffer stays at ${size >> 10} KiB (net.core.rmem_max): ${why}; `
        + `at most ${windowFor(size)} requests in flight`);
    }
    return size;
  }

  private rejectPending(error: (op: Op) => Error): void {
    for (const seq of [...this.pending.keys()]) this.settle(seq, (p) => p.op.reject(error(p.op)));
  }

  /**
   * ENOBUFS: the receive queue overflowed and some answers were dropped; the kernel reports it before
   * the datagrams still queued, so those answers come next. The acked requests whose ack never comes
   * fail (with ENOBUFS), and so do the silent ones outstanding then (their refusal may be the answer
   * dropped, so no later ack confirms them); the others settle normally. Any other socket error: nothing says whose answer
   * is lost, so every outstanding request fails with it.
   */
  private onSocketError(err: Error & { code?: string }): void {
    const errno = err.code ?? err.message;
    if (errno !== 'ENOBUFS') {
      this.rejectPending((op) => requestFailed(op.type, errno));
      return;
    }
    this.overrun();
  }

  /** Answers were dropped (ENOBUFS, or the drop count grew): the requests outstanding now are suspects. */
  private overrun(): void {
    this.log(`netlink request socket overrun (ENOBUFS, answers dropped): the requests outstanding whose answers were lost fail and are retried by the caller`);
    const suspects = [...this.pending.keys()].filter((seq) => !this.pending.get(seq)!.op.dump);
    if (suspects.length === 0) return;
    for (const seq of suspects) this.pending.get(seq)!.suspect = true;
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
    // Before any answer here confirms silent requests: a grown drop count means some answer before it may be lost.
    // Not during a dump, the only request then unanswered: the kernel waits for room to send its parts (netlink_dump),
    // so nothing is dropped, and reading the count for each of its datagrams cost a system call apiece.
    const drops = this.drops === undefined || this.dumping ? undefined : this.sock.receiveDrops?.();
    if (drops !== undefined && drops > this.drops!) {
      this.drops = drops;
      this.overrun();
    }
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
      this.confirmBefore(m.seq);
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
  /**
   * Has the kernel drop datagrams before they are queued: a classic BPF program (src/netlink/filter.ts) replaces the
   * socket's earlier one, undefined removes it. Returns undefined when done, else why not (the socket cannot filter:
   * every datagram is then delivered, as before).
   */
  setFilter(program: readonly SockFilterInsn[] | undefined): string | undefined;
  close(): void;
}

/** A sync() whose ack has not come by then fails (ms); the caller falls back to dumping. */
export const SYNC_TIMEOUT_MS = 1000;

/**
 * Join netlink multicast groups on a socket of its own (rtnetlink; `options.socket` opens another protocol, as
 * src/nft/events.ts does for NETLINK_NETFILTER). Each datagram's messages go to
 * `onMessages`. Notifications were lost, and the caller must resync, when `onOverrun(reason)` is
 * called: the queue overflowed (ENOBUFS, or with NETLINK_NO_ENOBUFS a drop count grown since the last
 * datagram, noticed at the next one: a sync() brings one) or a datagram cut short (MSG_TRUNC or a length running past
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
    throw new UplinkdError('netlink', `cannot subscribe to netlink groups ${groups.join(',')}: ${(e as Error).message}`, { cause: e });
  }
  /** sync() calls waiting for their ack, by sequence number. */
  const syncs = new Map<number, { resolve(): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  let seq = Math.floor(Math.random() * 0x7fffffff);
  /**
   * With NETLINK_NO_ENOBUFS (openRouteSocket) an overflow shows only as a grown drop count (a getsockopt(2) to read):
   * read before a sync() answers, so a snapshot never trusts a view that missed notifications, and otherwise once per
   * turn of the event loop that brought notifications, not once per datagram (the kernel sends each in its own).
   */
  let drops = sock.receiveDrops?.();
  let dropCheck: NodeJS.Immediate | undefined;
  const checkDrops = () => {
    if (dropCheck) clearImmediate(dropCheck);
    dropCheck = undefined;
    if (closed || drops === undefined) return;
    const dropped = sock.receiveDrops?.();
    if (dropped !== undefined && dropped > drops) onOverrun(`netlink socket overrun (${dropped - drops} dropped), events were lost: full resync`);
    if (dropped !== undefined) drops = dropped;
  };
  const onDatagram = (buf: Buffer, info?: DatagramInfo) => {
    if (info && info.port !== 0) {
      onError(new UplinkdError('netlink', `ignoring a netlink notification from port ${info.port}: only the kernel (port 0) is trusted`));
      return;
    }
    const syncWaits = syncs.size > 0;
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
    if (syncWaits) checkDrops();
    else if (!dropCheck && drops !== undefined) dropCheck = setImmediate(checkDrops);
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
    setFilter(program) {
      if (closed) return 'the socket is closed';
      return sock.setFilter ? sock.setFilter(program) : 'this socket has no filter support';
    },
    close() {
      if (!closed) sock.close();
      closed = true;
      if (dropCheck) clearImmediate(dropCheck);
      for (const w of syncs.values()) {
        clearTimeout(w.timer);
        w.reject(closedError());
      }
      syncs.clear();
    },
  };
}
