import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { UplinkdError } from '../errors';
import {
  NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP,
  NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_REQUEST,
} from './constants';
import { DUMP_TRIES, MAX_REQUEST_WINDOW, NetlinkClient, REQUEST_WINDOW, subscribe, windowFor, type RawSocketLike } from './socket';
import { encodeAck, encodeMessage, parseMessages, strAttr, u32Attr, type NlMessage } from './wire';

/** A fake kernel: records requests (and the datagrams they came in), answers through `reply`. */
class FakeSocket extends EventEmitter implements RawSocketLike {
  sent: NlMessage[] = [];
  datagrams: number[][] = [];
  groups: number[] = [];
  closed = false;
  /** When set, send() reports this errno and the kernel sees nothing. */
  sendErrno: string | undefined;
  /** Answers the kernel dropped for a full buffer (sk_drops, read as with NETLINK_NO_ENOBUFS). */
  dropped = 0;
  receiveDrops?: () => number | undefined = () => this.dropped;
  constructor(private readonly kernel: (req: NlMessage, sock: FakeSocket) => void) { super(); }
  send(msg: Uint8Array, _o: { port?: number }, cb: (err?: Error) => void): void {
    const reqs = parseMessages(Buffer.from(msg));
    if (this.sendErrno) return cb(Object.assign(new Error('sendmsg'), { code: this.sendErrno }));
    this.sent.push(...reqs);
    this.datagrams.push(reqs.map((r) => r.seq));
    cb();
    setImmediate(() => { for (const req of reqs) this.kernel(req, this); });
  }
  reply(...bufs: Buffer[]): void { this.emit('message', Buffer.concat(bufs)); }
  addMembership(g: number): void { this.groups.push(g); }
  setRecvBufferSize(): void {}
  address() { return { port: 1234 }; }
  unref(): void {}
  close(): void { this.closed = true; }
}

const data = (req: NlMessage, n: number, flags = NLM_F_MULTI) => encodeMessage(24, flags, req.seq, 1234, Buffer.from([n, 0, 0, 0]));
const done = (req: NlMessage) => encodeMessage(NLMSG_DONE, NLM_F_MULTI, req.seq, 1234, Buffer.alloc(4));

test('request: flags, increasing seq, resolves on ACK, rejects with the errno name', async () => {
  const fake = new FakeSocket((req, s) => s.reply(encodeAck(req.seq, 1234, req.type === 25 ? 3 : 0, req)));
  const c = new NetlinkClient({ socket: () => fake });
  assert.deepEqual(await c.request(24, 0x400, Buffer.alloc(12)), []);
  await assert.rejects(c.request(25, 0, Buffer.alloc(12)),
    (e: unknown) => e instanceof UplinkdError && e.code === 'netlink' && e.detail.errno === 'ESRCH');
  assert.equal(fake.sent[0].flags, NLM_F_REQUEST | NLM_F_ACK | 0x400);
  assert.equal(fake.sent[1].seq, fake.sent[0].seq + 1);
  c.close();
  assert.equal(fake.closed, true);
});

test('dump: multipart across datagrams, ends at DONE, ignores other sequence numbers', async () => {
  const fake = new FakeSocket((req, s) => {
    s.reply(data(req, 1), data({ ...req, seq: req.seq + 100 }, 9), data(req, 2));
    s.reply(data(req, 3), done(req));
  });
  const c = new NetlinkClient({ socket: () => fake });
  const msgs = await c.dump(26, Buffer.alloc(12));
  assert.deepEqual(msgs.map((m) => m.payload[0]), [1, 2, 3]);
  assert.equal(fake.sent[0].flags, NLM_F_REQUEST | NLM_F_DUMP);
  c.close();
});

test('dump: repeated when the kernel flags it interrupted', async () => {
  let calls = 0;
  const fake = new FakeSocket((req, s) => {
    calls++;
    s.reply(data(req, calls, calls === 1 ? NLM_F_MULTI | NLM_F_DUMP_INTR : NLM_F_MULTI), done(req));
  });
  const c = new NetlinkClient({ socket: () => fake });
  assert.deepEqual((await c.dump(26, Buffer.alloc(12))).map((m) => m.payload[0]), [2]);
  assert.equal(calls, 2);
  c.close();
});

test('a timeout rejects only its own request; a late answer is ignored', async () => {
  const held: NlMessage[] = [];
  const fake = new FakeSocket((req) => { held.push(req); });
  // Generous times: b keeps half its timeout when a expires, even on a loaded machine.
  const c = new NetlinkClient({ socket: () => fake, timeoutMs: 400 });
  const a = c.request(24, 0, Buffer.alloc(12));
  await new Promise((r) => setTimeout(r, 200));
  const b = c.request(24, 0, Buffer.alloc(12));
  const bOutcome = assert.rejects(b, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'EEXIST');
  await assert.rejects(a, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'ETIMEDOUT');
  while (held.length < 2) await new Promise((r) => setImmediate(r));
  fake.reply(encodeAck(held[0]!.seq, 1234, 0, held[0]!)); // a's late ack: must not settle b
  fake.reply(encodeAck(held[1]!.seq, 1234, 17, held[1]!));
  await bOutcome;
  assert.equal(fake.sent.length, 2);
  c.close();
});

test('subscriber: joins groups, delivers messages, ENOBUFS -> overrun', () => {
  const fake = new FakeSocket(() => {});
  const got: number[] = [];
  const overruns: string[] = [];
  const errors: Error[] = [];
  const sub = subscribe([1, 5, 32], (msgs) => got.push(...msgs.map((m) => m.type)), (why) => overruns.push(why), (e) => errors.push(e),
    { socket: () => fake });
  assert.deepEqual(fake.groups, [1, 5, 32]);
  fake.reply(encodeMessage(20, 0, 0, 0, Buffer.alloc(8)), encodeMessage(24, 0, 0, 0, Buffer.alloc(12)));
  assert.deepEqual(got, [20, 24]);
  fake.emit('error', Object.assign(new Error('recvmsg'), { code: 'ENOBUFS' }));
  assert.equal(overruns.length, 1);
  assert.match(overruns[0]!, /ENOBUFS/);
  sub.close();
  assert.equal(fake.closed, true);
});

test('subscriber: a cut datagram delivers its whole messages, then asks for a resync; foreign senders are dropped', () => {
  const fake = new FakeSocket(() => {});
  const got: number[] = [];
  const overruns: string[] = [];
  const errors: Error[] = [];
  subscribe([7], (msgs) => got.push(...msgs.map((m) => m.type)), (why) => overruns.push(why), (e) => errors.push(e), { socket: () => fake });
  const whole = encodeMessage(24, 0, 0, 0, Buffer.alloc(12));
  const cut = encodeMessage(25, 0, 0, 0, Buffer.alloc(40)).subarray(0, 30);
  assert.doesNotThrow(() => fake.emit('message', Buffer.concat([whole, cut]), { port: 0 }));
  assert.deepEqual(got, [24]);
  assert.equal(overruns.length, 1);
  assert.match(overruns[0]!, /nlmsg_len 56 at offset 28 of 58: full resync/);
  fake.emit('truncatedMessage', whole, { port: 0, truncated: 9000 });
  assert.deepEqual(got, [24, 24]);
  assert.match(overruns[1]!, /truncated \(28 of 9000 bytes\)/);
  fake.emit('message', encodeMessage(24, 0, 0, 0, Buffer.alloc(12)), { port: 4321 });
  assert.deepEqual(got, [24, 24], 'a datagram from a user-space port is not a notification');
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /port 4321/);
});

/** A fake kernel that answers only when told: `held` are the requests not answered yet, in arrival order. */
function holdingSocket(): { fake: FakeSocket; held: NlMessage[]; answer(req: NlMessage, errno?: number): void } {
  const held: NlMessage[] = [];
  const fake = new FakeSocket((req) => { held.push(req); });
  const answer = (req: NlMessage, errno = 0) => {
    held.splice(held.indexOf(req), 1);
    fake.reply(encodeMessage(24, 0, req.seq, 1234, req.payload), encodeAck(req.seq, 1234, errno, req));
  };
  return { fake, held, answer };
}

const marked = (n: number) => Buffer.from([n, 0, 0, 0]);
/** Lets queued requests leave (they go after the current turn) and the fake kernel see them. */
const tick = async () => { for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r)); };

test('pipelined: sent in call order (the first at once, the rest in one datagram), acks matched by seq in any order', async () => {
  const { fake, held, answer } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake });
  const calls = [1, 2, 3].map((n) => c.request(24, 0, marked(n)));
  const outcomes = calls.map((p) => p.then((r) => r.map((m) => m.payload[0]), (e: UplinkdError) => e.detail.errno));
  assert.deepEqual(fake.sent.map((m) => m.payload[0]), [1], 'the first leaves at once on an idle socket');
  await tick();
  assert.deepEqual(fake.sent.map((m) => m.payload[0]), [1, 2, 3]);
  assert.deepEqual(fake.datagrams.map((d) => d.length), [1, 2], 'the rest share a datagram');
  assert.deepEqual(fake.sent.map((m) => m.seq - fake.sent[0]!.seq), [0, 1, 2]);
  const [r1, r2, r3] = [...held];
  answer(r3!);
  answer(r1!, 17);
  answer(r2!);
  assert.deepEqual(await Promise.all(outcomes), ['EEXIST', [2], [3]]);
  c.close();
});

test('window: never more than `window` unanswered; the rest wait and go in order', async () => {
  const { fake, held, answer } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake, window: 4 });
  const all = Promise.all(Array.from({ length: 11 }, (_, i) => c.request(24, 0, marked(i))));
  let most = 0;
  let answered = 0;
  while (answered < 11) {
    await tick();
    most = Math.max(most, fake.sent.length - answered);
    if (held.length) {
      answer(held[held.length - 1]!); // newest first: out of order
      answered++;
    }
  }
  await all;
  assert.equal(most, 4);
  assert.ok(fake.datagrams.every((d) => d.length <= 4));
  assert.deepEqual(fake.sent.map((m) => m.payload[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  c.close();
});

test('each request has its own timeout, counted from when it is sent', async () => {
  const { fake, held, answer } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake, timeoutMs: 40, window: 1 });
  const t0 = Date.now();
  const a = c.request(24, 0, marked(1));
  const b = c.request(24, 0, marked(2));
  const bOutcome = assert.rejects(b, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'ETIMEDOUT');
  await assert.rejects(a, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'ETIMEDOUT');
  await tick();
  assert.deepEqual(held.map((m) => m.payload[0]), [1, 2], 'b is sent once a gave up its slot');
  await bOutcome;
  assert.ok(Date.now() - t0 >= 75, 'b waited its own 40 ms after being sent');
  answer(held[0]!); // late answers go nowhere
  answer(held[0]!);
  c.close();
});

test('ENOBUFS fails only the requests whose acks were dropped; the acks still queued settle theirs; later ones work', async () => {
  const { fake, held, answer } = holdingSocket();
  const logged: string[] = [];
  const c = new NetlinkClient({ socket: () => fake, log: (l) => logged.push(l) });
  const outstanding = [1, 2, 3].map((n) => c.request(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  await tick();
  const [r1, r2, r3] = [...held];
  fake.emit('error', Object.assign(new Error('recvmsg'), { code: 'ENOBUFS' }));
  answer(r1!); // queued before the overflow: read after the error
  answer(r3!, 17);
  void r2; // its ack was the one dropped
  assert.deepEqual(await Promise.all(outstanding), ['ok', 'ENOBUFS', 'EEXIST']);
  assert.match(logged.join('\n'), /ENOBUFS/);
  held.splice(0);
  const later = c.request(24, 0, marked(4));
  await tick();
  answer(held[0]!);
  assert.deepEqual((await later).map((m) => m.payload[0]), [4]);
  c.close();
});

test('another socket error fails every outstanding request (whose answer was lost is unknown)', async () => {
  const { fake } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake });
  const outstanding = [1, 2].map((n) => c.request(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  await tick();
  fake.emit('error', Object.assign(new Error('recvmsg'), { code: 'EIO' }));
  assert.deepEqual(await Promise.all(outstanding), ['EIO', 'EIO']);
  c.close();
});

test('a short NLMSG_ERROR rejects its request with a typed error and throws nothing out of the listener', async () => {
  const { fake, held } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake });
  const r = c.request(24, 0, marked(1));
  await tick();
  const short = encodeMessage(NLMSG_ERROR, 0, held[0]!.seq, 1234, Buffer.from([0xef, 0xff, 0xff, 0xff]));
  assert.doesNotThrow(() => fake.reply(short));
  await assert.rejects(r, (e: unknown) => e instanceof UplinkdError && e.code === 'netlink' && /short NLMSG_ERROR/.test(e.message));
  c.close();
});

test('extended ACK: the kernel\'s message and attribute offset ride on the refusal (capped and full echo)', async () => {
  const tlvs = Buffer.concat([strAttr(NLMSGERR_ATTR_MSG, 'Nexthop id does not exist'), u32Attr(NLMSGERR_ATTR_OFFS, 36)]);
  const ackWith = (req: NlMessage, capped: boolean) => {
    const echoed = capped ? encodeMessage(req.type, req.flags, req.seq, req.pid, Buffer.alloc(0)).subarray(0, 16)
      : encodeMessage(req.type, req.flags, req.seq, req.pid, req.payload);
    if (capped) echoed.writeUInt32LE(16 + req.payload.length, 0);
    const err = Buffer.alloc(4);
    err.writeInt32LE(-22, 0);
    return encodeMessage(NLMSG_ERROR, NLM_F_ACK_TLVS | (capped ? NLM_F_CAPPED : 0), req.seq, 1234, Buffer.concat([err, echoed, tlvs]));
  };
  for (const capped of [true, false]) {
    const fake = new FakeSocket((req, s) => s.reply(ackWith(req, capped)));
    const c = new NetlinkClient({ socket: () => fake });
    await assert.rejects(c.request(24, 0, Buffer.alloc(13)), (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'EINVAL'
      && e.detail.kernelMessage === 'Nexthop id does not exist'
      && e.message === 'netlink request (type 24) failed: EINVAL (Nexthop id does not exist, attribute at byte 36)');
    c.close();
  }
});

test('only the kernel (port 0) answers: a datagram from another port is logged and dropped', async () => {
  const { fake, held, answer } = holdingSocket();
  const logged: string[] = [];
  const c = new NetlinkClient({ socket: () => fake, log: (l) => logged.push(l) });
  const r = c.request(24, 0, marked(1)).then(() => 'ok', (e: UplinkdError) => e.detail.errno);
  await tick();
  fake.emit('message', encodeAck(held[0]!.seq, 1234, 1, held[0]!), { port: 999 }); // a forged EPERM
  assert.match(logged.join('\n'), /from port 999/);
  answer(held[0]!);
  assert.equal(await r, 'ok');
  c.close();
});

test('a datagram cut short: whole messages count, the cut request fails, a dump with a lost part starts over', async () => {
  const { fake, held } = holdingSocket();
  const logged: string[] = [];
  const c = new NetlinkClient({ socket: () => fake, log: (l) => logged.push(l) });
  const a = c.request(24, 0, marked(1)).then(() => 'ok', (e: UplinkdError) => e.detail.errno);
  const b = c.request(24, 0, marked(2)).then(() => 'ok', (e: UplinkdError) => e.detail.errno);
  await tick();
  const [ra, rb] = [...held];
  held.splice(0);
  fake.reply(encodeAck(ra!.seq, 1234, 0, ra!), encodeAck(rb!.seq, 1234, 0, rb!).subarray(0, 20));
  assert.deepEqual(await Promise.all([a, b]), ['ok', 'EBADMSG']);
  assert.match(logged.join('\n'), /cut short/);

  const dump = c.dump(26, marked(3));
  await tick();
  const d1 = held.shift()!;
  fake.reply(data(d1, 1), data(d1, 2).subarray(0, 18));
  fake.reply(done(d1));
  await tick();
  const d2 = held.shift()!;
  assert.notEqual(d2.seq, d1.seq, 'asked again');
  fake.reply(data(d2, 1), data(d2, 2), done(d2));
  assert.deepEqual((await dump).map((m) => m.payload[0]), [1, 2]);

  const r = c.request(24, 0, marked(4)).then(() => 'ok', (e: UplinkdError) => e.detail.errno);
  await tick();
  fake.emit('truncatedMessage', encodeAck(held[0]!.seq, 1234, 0, held[0]!).subarray(0, 16), { port: 0, truncated: 36 });
  assert.equal(await r, 'EBADMSG');
  assert.match(logged.join('\n'), /truncated: 16 of 36 bytes/);
  c.close();
});

test('a dump the kernel keeps flagging interrupted ends in a typed error, never an inconsistent answer', async () => {
  let calls = 0;
  const fake = new FakeSocket((req, s) => {
    calls++;
    s.reply(data(req, calls, NLM_F_MULTI | NLM_F_DUMP_INTR), done(req));
  });
  const c = new NetlinkClient({ socket: () => fake });
  await assert.rejects(c.dump(26, Buffer.alloc(12)), (e: unknown) => e instanceof UplinkdError && e.code === 'netlink' && e.detail.errno === 'EINTR');
  assert.equal(calls, DUMP_TRIES);
  c.close();
});

test('NLMSG_DONE with an errno and extended ACK fails the dump with the kernel\'s text', async () => {
  const fake = new FakeSocket((req, s) => {
    const p = Buffer.concat([Buffer.from([0xfe, 0xff, 0xff, 0xff]), strAttr(NLMSGERR_ATTR_MSG, 'ipv4: FIB table does not exist')]);
    s.reply(encodeMessage(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS, req.seq, 1234, p));
  });
  const c = new NetlinkClient({ socket: () => fake });
  await assert.rejects(c.dump(26, Buffer.alloc(12)), (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'ENOENT'
    && e.detail.kernelMessage === 'ipv4: FIB table does not exist');
  c.close();
});

test('a dump runs alone: after the requests before it, before the ones after it', async () => {
  const { fake, held, answer } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake });
  const before = c.request(24, 0, marked(1));
  const dump = c.dump(26, marked(2));
  const after = c.request(24, 0, marked(3));
  await tick();
  assert.deepEqual(fake.sent.map((m) => m.payload[0]), [1], 'the dump waits for the request');
  answer(held[0]!);
  await before;
  await tick();
  assert.deepEqual(fake.sent.map((m) => m.payload[0]), [1, 2], 'the later request waits for the dump');
  const d = held.shift()!;
  fake.reply(data(d, 7), done(d));
  assert.deepEqual((await dump).map((m) => m.payload[0]), [7]);
  await tick();
  assert.deepEqual(fake.sent.map((m) => m.payload[0]), [1, 2, 3]);
  answer(held[0]!);
  await after;
  c.close();
});

test('close rejects what is outstanding and what waits', async () => {
  const { fake } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake, window: 1 });
  const both = [c.request(24, 0, marked(1)), c.request(24, 0, marked(2))].map((p) => p.then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  await tick();
  c.close();
  assert.deepEqual(await Promise.all(both), ['ECANCELED', 'ECANCELED']);
  assert.equal(fake.sent.length, 1);
});

test('big requests are split over datagrams; a failed send rejects the requests it carried', async () => {
  const { fake, held, answer } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake });
  const first = c.request(24, 0, marked(1));
  const big = [2, 3, 4].map((n) => c.request(24, 0, Buffer.concat([marked(n), Buffer.alloc(12 << 10)])));
  await tick();
  assert.deepEqual(fake.datagrams.map((d) => d.length), [1, 2, 1], 'at most 32 KiB a datagram');
  for (const r of [...held]) answer(r);
  await Promise.all([first, ...big]);
  fake.sendErrno = 'EMSGSIZE';
  const failing = [5, 6].map((n) => c.request(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  assert.deepEqual(await Promise.all(failing), ['EMSGSIZE', 'EMSGSIZE']);
  fake.sendErrno = undefined;
  const after = c.request(24, 0, marked(7));
  await tick();
  answer(held[0]!);
  assert.deepEqual((await after).map((m) => m.payload[0]), [7]);
  c.close();
});

test('subscriber sync: NLMSG_NOOP with NLM_F_ACK on the subscriber socket; resolves once the notifications queued before its ack were delivered', async () => {
  // The kernel queues notifications, then the ack: both arrive in one datagram here.
  const fake = new FakeSocket((req, s) => s.reply(encodeMessage(24, 0, 0, 0, Buffer.alloc(12)), encodeAck(req.seq, 1234, 0, req),
    encodeMessage(25, 0, 0, 0, Buffer.alloc(12))));
  const got: number[] = [];
  const sub = subscribe([7], (msgs) => got.push(...msgs.map((m) => m.type)), () => undefined, () => undefined, { socket: () => fake });
  await sub.sync();
  assert.deepEqual(got, [24, 25], 'the notifications around the ack are delivered in order; the ack itself is not a notification');
  assert.equal(fake.sent[0]!.type, 1); // NLMSG_NOOP
  assert.equal(fake.sent[0]!.flags, NLM_F_REQUEST | NLM_F_ACK);
  sub.close();
  await assert.rejects(sub.sync(), (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'ECANCELED');
});

/** A fake kernel as netlink_rcv_skb answers: an error for a refused request, an ack only when NLM_F_ACK asks for one. */
function rtnetlinkLike(refuse: Map<number, number>): FakeSocket {
  return new FakeSocket((req, s) => {
    const errno = refuse.get(req.payload[0]!) ?? 0;
    if (errno || req.flags & NLM_F_ACK) s.reply(encodeAck(req.seq, 1234, errno, req));
  });
}

test('change: no NLM_F_ACK but on the last request of each datagram; a later answer confirms the silent ones; a refusal is its own', async () => {
  const fake = rtnetlinkLike(new Map([[3, 17]]));
  const c = new NetlinkClient({ socket: () => fake });
  const outcomes = [1, 2, 3, 4, 5].map((n) => c.change(24, 0x600, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  assert.deepEqual(await Promise.all(outcomes), ['ok', 'ok', 'EEXIST', 'ok', 'ok']);
  assert.deepEqual(fake.datagrams.map((d) => d.length), [1, 4]);
  const acked = fake.sent.map((m) => (m.flags & NLM_F_ACK ? 'ack' : '-'));
  assert.deepEqual(acked, ['ack', '-', '-', '-', 'ack'], 'a lone request and each datagram\'s last ask for the ack');
  assert.ok(fake.sent.every((m) => (m.flags & ~NLM_F_ACK) === (NLM_F_REQUEST | 0x600)));
  c.close();
});

test('change: a silent request stays outstanding until a later answer comes (no answer, no success)', async () => {
  const { fake, held, answer } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake, timeoutMs: 60_000 });
  void c.request(24, 0, marked(0)); // keeps the socket busy so the next ones share a datagram
  const silent = [1, 2, 3].map((n) => c.change(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  await tick();
  let settled = 0;
  for (const p of silent) void p.then(() => settled++);
  answer(held[0]!); // the answer to the request before them proves nothing about them
  await tick();
  assert.equal(settled, 0);
  answer(held.find((m) => m.payload[0] === 3)!); // the datagram's last, which asked for the ack
  assert.deepEqual(await Promise.all(silent), ['ok', 'ok', 'ok']);
  c.close();
});

/**
 * A busy request, then two changes sharing a datagram (only the second asks for an ack), then `overflow`, then that
 * ack: the two changes' outcomes, and the client and socket to go on with.
 */
async function overflowWhileOutstanding(overflow: (fake: FakeSocket) => void) {
  const { fake, held, answer } = holdingSocket();
  const logged: string[] = [];
  const c = new NetlinkClient({ socket: () => fake, log: (l) => logged.push(l) });
  void c.request(24, 0, marked(0)).catch(() => undefined);
  const before = [1, 2].map((n) => c.change(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  await tick();
  overflow(fake);
  answer(held.find((m) => m.payload[0] === 2)!); // the datagram's ack, queued before the overflow
  return { c, held, answer, logged, outcomes: await Promise.all(before) };
}

test('ENOBUFS: the silent requests outstanding then fail even when a later ack arrives (their refusal may have been dropped)', async () => {
  const { c, held, answer, outcomes } = await overflowWhileOutstanding((fake) => fake.emit('error', Object.assign(new Error('recvmsg'), { code: 'ENOBUFS' })));
  assert.deepEqual(outcomes, ['ENOBUFS', 'ok'], 'the acked one settles by its ack; the silent one cannot be confirmed');
  held.splice(0);
  const after = [3, 4].map((n) => c.change(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  await tick();
  for (const m of held.filter((r) => r.flags & NLM_F_ACK)) answer(m);
  assert.deepEqual(await Promise.all(after), ['ok', 'ok'], 'later requests settle as usual');
  c.close();
});

test('window: as many requests in flight as the receive buffer holds answers for; raised with SO_RCVBUFFORCE when rmem_max caps it', async () => {
  assert.equal(windowFor(425_984), 208, 'the default rmem_max: 208 KB, doubled');
  assert.equal(windowFor(8 << 20), MAX_REQUEST_WINDOW);
  assert.equal(windowFor(4096), REQUEST_WINDOW);
  const sized = (force: (n: number) => string | undefined): FakeSocket => {
    let rcvbuf = 425_984;
    const fake = Object.assign(rtnetlinkLike(new Map()), {
      getRecvBufferSize: () => rcvbuf,
      forceRecvBufferSize: (n: number) => { const why = force(n); if (!why) rcvbuf = 2 * n; return why; },
    });
    return fake;
  };
  const logged: string[] = [];
  const raised = sized(() => undefined);
  const c1 = new NetlinkClient({ socket: () => raised, log: (l) => logged.push(l) });
  const many = Array.from({ length: 3000 }, (_, i) => c1.change(24, 0, Buffer.from([i & 0xff, i >> 8, 0, 0])));
  await Promise.all(many);
  assert.equal(raised.datagrams.length <= 3, true, `3000 changes in ${raised.datagrams.length} datagrams`);
  assert.deepEqual(raised.sent.map((m) => m.payload[0]! | (m.payload[1]! << 8)), Array.from({ length: 3000 }, (_, i) => i), 'in call order');
  assert.equal(logged.length, 0);
  c1.close();
  const denied = sized(() => 'SO_RCVBUFFORCE failed: EPERM');
  const c2 = new NetlinkClient({ socket: () => denied, log: (l) => logged.push(l) });
  assert.equal(logged.length, 0, 'without CAP_NET_ADMIN the smaller buffer is expected');
  c2.close();
  const noAddon = sized(() => 'the netlink addon is not loaded (uplinkd_netlink.node not built (npm run build:native))');
  const c3 = new NetlinkClient({ socket: () => noAddon, log: (l) => logged.push(l) });
  assert.equal(logged.length, 1);
  assert.match(logged[0]!, /stays at 416 KiB .*addon is not loaded.*at most 208 requests in flight/);
  c3.close();
});

test('NETLINK_NO_ENOBUFS: a grown drop count makes the silent requests outstanding fail, though a later ack arrives', async () => {
  // An answer (maybe request 1's refusal) did not fit; no socket error says so.
  const { c, held, answer, logged, outcomes } = await overflowWhileOutstanding((fake) => { fake.dropped = 1; });
  assert.deepEqual(outcomes, ['ENOBUFS', 'ok']);
  assert.match(logged.join('\n'), /overrun/);
  held.splice(0);
  const after = c.change(24, 0, marked(3));
  await tick();
  answer(held[0]!);
  await after;
  c.close();
});

test('without a drop count (no addon) every change asks for its own ack', async () => {
  const fake = rtnetlinkLike(new Map([[2, 17]]));
  fake.receiveDrops = undefined;
  const c = new NetlinkClient({ socket: () => fake, log: () => undefined });
  const outcomes = [1, 2, 3].map((n) => c.change(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  assert.deepEqual(await Promise.all(outcomes), ['ok', 'EEXIST', 'ok']);
  assert.ok(fake.sent.every((m) => m.flags & NLM_F_ACK));
  c.close();
});

test('subscriber with NETLINK_NO_ENOBUFS: a grown drop count asks for a resync, read once per event-loop turn of datagrams, and before a sync answers', async () => {
  const fake = new FakeSocket(() => {});
  let reads = 0;
  fake.receiveDrops = () => (reads++, fake.dropped);
  const got: number[] = [];
  const overruns: string[] = [];
  const sub = subscribe([7], (msgs) => got.push(...msgs.map((m) => m.type)), (why) => overruns.push(why), () => undefined, { socket: () => fake });
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  fake.emit('message', encodeMessage(24, 0, 0, 0, Buffer.alloc(12)), { port: 0 });
  await turn();
  assert.equal(overruns.length, 0);
  fake.dropped = 3; // notifications that did not fit; no socket error says so
  const before = reads;
  for (let i = 0; i < 10; i++) fake.emit('message', encodeMessage(25, 0, 0, 0, Buffer.alloc(12)), { port: 0 });
  await turn();
  assert.equal(reads - before, 1, 'ten datagrams in one turn: one read of the count');
  assert.deepEqual(got, [24, ...Array(10).fill(25)], 'what did arrive is still delivered');
  assert.equal(overruns.length, 1);
  assert.match(overruns[0]!, /3 dropped.*full resync/);
  fake.emit('message', encodeMessage(24, 0, 0, 0, Buffer.alloc(12)), { port: 0 });
  await turn();
  assert.equal(overruns.length, 1, 'the same drops are not reported twice');
  // A sync's answer: the count is read before the waiter resumes, so it learns of the loss first.
  const synced = sub.sync();
  fake.dropped = 5;
  const noop = fake.sent.at(-1)!;
  fake.emit('message', encodeAck(noop.seq, 0, 0, noop), { port: 0 });
  assert.equal(overruns.length, 2, 'reported before the sync resolves');
  await synced;
  sub.close();
});
