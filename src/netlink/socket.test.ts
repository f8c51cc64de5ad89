import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { UplinkdError } from '../errors';
import { NLMSG_DONE, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_REQUEST } from './constants';
import { NetlinkClient, subscribe, type RawSocketLike } from './socket';
import { encodeAck, encodeMessage, parseMessages, type NlMessage } from './wire';

/** A fake kernel: records requests (and the datagrams they came in), answers through `reply`. */
class FakeSocket extends EventEmitter implements RawSocketLike {
  sent: NlMessage[] = [];
  datagrams: number[][] = [];
  groups: number[] = [];
  closed = false;
  /** When set, send() reports this errno and the kernel sees nothing. */
  sendErrno: string | undefined;
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
  const c = new NetlinkClient({ socket: () => fake, timeoutMs: 30 });
  const a = c.request(24, 0, Buffer.alloc(12));
  await new Promise((r) => setTimeout(r, 15));
  const b = c.request(24, 0, Buffer.alloc(12));
  const bOutcome = assert.rejects(b, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'EEXIST');
  await assert.rejects(a, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'ETIMEDOUT');
  fake.reply(encodeAck(held[0]!.seq, 1234, 0, held[0]!)); // a's late ack: must not settle b
  fake.reply(encodeAck(held[1]!.seq, 1234, 17, held[1]!));
  await bOutcome;
  assert.equal(fake.sent.length, 2);
  c.close();
});

test('subscriber: joins groups, delivers messages, ENOBUFS -> overrun', () => {
  const fake = new FakeSocket(() => {});
  const got: number[] = [];
  let overruns = 0;
  const errors: Error[] = [];
  const sub = subscribe([1, 5, 32], (msgs) => got.push(...msgs.map((m) => m.type)), () => overruns++, (e) => errors.push(e),
    { socket: () => fake });
  assert.deepEqual(fake.groups, [1, 5, 32]);
  fake.reply(encodeMessage(20, 0, 0, 0, Buffer.alloc(8)), encodeMessage(24, 0, 0, 0, Buffer.alloc(12)));
  assert.deepEqual(got, [20, 24]);
  fake.emit('error', Object.assign(new Error('recvmsg'), { code: 'ENOBUFS' }));
  assert.equal(overruns, 1);
  fake.emit('message', Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
  assert.equal(errors.length, 1);
  sub.close();
  assert.equal(fake.closed, true);
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

test('a socket error (ENOBUFS) rejects every outstanding request; later ones still work', async () => {
  const { fake, held, answer } = holdingSocket();
  const c = new NetlinkClient({ socket: () => fake });
  const outstanding = [1, 2, 3].map((n) => c.request(24, 0, marked(n)).then(() => 'ok', (e: UplinkdError) => e.detail.errno));
  await tick();
  fake.emit('error', Object.assign(new Error('recvmsg'), { code: 'ENOBUFS' }));
  assert.deepEqual(await Promise.all(outstanding), ['ENOBUFS', 'ENOBUFS', 'ENOBUFS']);
  held.splice(0);
  const later = c.request(24, 0, marked(4));
  await tick();
  answer(held[0]!);
  assert.deepEqual((await later).map((m) => m.payload[0]), [4]);
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
