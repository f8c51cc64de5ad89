import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { UplinkdError } from '../errors';
import { NLMSG_DONE, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_REQUEST } from './constants';
import { NetlinkClient, subscribe, type RawSocketLike } from './socket';
import { encodeAck, encodeMessage, parseMessages, type NlMessage } from './wire';

/** A fake kernel: records requests, answers through `reply`. */
class FakeSocket extends EventEmitter implements RawSocketLike {
  sent: NlMessage[] = [];
  groups: number[] = [];
  closed = false;
  constructor(private readonly kernel: (req: NlMessage, sock: FakeSocket) => void) { super(); }
  send(msg: Uint8Array, _o: { port?: number }, cb: (err?: Error) => void): void {
    const req = parseMessages(Buffer.from(msg))[0];
    this.sent.push(req);
    cb();
    setImmediate(() => this.kernel(req, this));
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

test('requests run one at a time; a timeout rejects and a late answer is ignored', async () => {
  let first = true;
  let late: (() => void) | undefined;
  const fake = new FakeSocket((req, s) => {
    if (first) { first = false; late = () => s.reply(encodeAck(req.seq, 1234, 0, req)); return; }
    s.reply(encodeAck(req.seq, 1234, 17, req));
  });
  const c = new NetlinkClient({ socket: () => fake, timeoutMs: 30 });
  const a = c.request(24, 0, Buffer.alloc(12));
  const b = c.request(24, 0, Buffer.alloc(12));
  await assert.rejects(a, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'ETIMEDOUT');
  late!(); // arrives while b is pending: must not resolve b
  await assert.rejects(b, (e: unknown) => e instanceof UplinkdError && e.detail.errno === 'EEXIST');
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
