// Every decoder of kernel input, fed random and mutated bytes (seeded, so a failure replays):
// each call returns or throws UplinkdError, nothing else; the sockets' listeners never throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { UplinkdError } from '../errors';
import { NetlinkKernelPort } from './netlink-port';
import * as C from '../netlink/constants';
import { decodeAddress, decodeLink } from '../netlink/link';
import { ifNamesFrom } from '../netlink/names';
import { decodeNexthop, encodeNexthop } from '../netlink/nexthop';
import { decodeRoute, encodeRoute } from '../netlink/route';
import { decodeRule, encodeRule } from '../netlink/rule';
import { NetlinkClient, type DatagramInfo, type RawSocketLike } from '../netlink/socket';
import {
  attr, attrMap, decodeDone, decodeError, encodeAck, encodeMessage, ipv4Attr, nested, parseAttrs, splitDatagram, strAttr,
  u32Attr, type NlMessage,
} from '../netlink/wire';
import { prng as rng } from '../../test/support/prng';

const names = ifNamesFrom([{ index: 2, name: 'wan0' }, { index: 3, name: 'wan1' }]);

function header(len: number, fill: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(len);
  fill(b);
  return b;
}

/** Valid payloads of every kind the decoders read, to mutate. */
const SEEDS: { type: number; payload: Buffer }[] = [
  { type: C.RTM_NEWROUTE, payload: encodeRoute({ table: 1001, dst: '10.0.0.0/8', type: 'unicast', protocol: 117, scope: 'universe', metric: 5, src: '10.0.0.1', gateway: '10.0.0.254', dev: 'wan0' }, names) },
  { type: C.RTM_NEWROUTE, payload: encodeRoute({ table: 254, dst: '0.0.0.0/0', type: 'unicast', protocol: 16, scope: 'universe', multipath: [{ dev: 'wan0', gateway: '192.0.2.1', weight: 2 }, { dev: 'wan1', weight: 1 }] }, names) },
  { type: C.RTM_NEWROUTE, payload: encodeRoute({ table: 1000, dst: '0.0.0.0/0', type: 'unicast', protocol: 117, scope: 'universe', nhid: 1000 }, names) },
  { type: C.RTM_NEWRULE, payload: encodeRule({ priority: 10100, action: 'lookup', table: 1001, protocol: 117, src: '198.51.100.2/32', iif: 'lo', oif: 'wan0', fwmark: 0x100, fwmask: 0xff00, suppressPrefixlen: 0, invert: true }) },
  { type: C.RTM_NEWNEXTHOP, payload: encodeNexthop({ id: 1000, protocol: 117, group: [{ id: 1001, weight: 1 }, { id: 1002, weight: 3 }], resilient: { buckets: 128, idleTimer: 1, unbalancedTimer: 0 } }, names) },
  { type: C.RTM_NEWNEXTHOP, payload: encodeNexthop({ id: 1001, protocol: 117, gateway: '192.0.2.1', dev: 'wan0' }, names) },
  { type: C.RTM_NEWLINK, payload: Buffer.concat([header(C.IFINFOMSG_LEN, (b) => { b.writeInt32LE(2, 4); b.writeUInt32LE(C.IFF_UP | C.IFF_LOWER_UP, 8); }),
    strAttr(C.IFLA_IFNAME, 'wan0'), nested(C.IFLA_LINKINFO, [strAttr(C.IFLA_INFO_KIND, 'vlan'), attr(2, Buffer.alloc(8))])]) },
  { type: C.RTM_NEWADDR, payload: Buffer.concat([header(C.IFADDRMSG_LEN, (b) => { b.writeUInt8(C.AF_INET, 0); b.writeUInt8(24, 1); b.writeUInt32LE(2, 4); }),
    ipv4Attr(C.IFA_ADDRESS, '198.51.100.2'), ipv4Attr(C.IFA_LOCAL, '198.51.100.2'), u32Attr(C.IFA_FLAGS, 0x80)]) },
];

const DECODERS: [string, (type: number, p: Buffer) => unknown][] = [
  ['decodeRoute', (_t, p) => decodeRoute(p, names)],
  ['decodeRule', (_t, p) => decodeRule(p)],
  ['decodeNexthop', (_t, p) => decodeNexthop(p, names)],
  ['decodeLink', (_t, p) => decodeLink(p)],
  ['decodeAddress', (_t, p) => decodeAddress(p, names)],
  ['parseAttrs', (_t, p) => parseAttrs(p)],
  ['attrMap', (_t, p) => attrMap(p, 4)],
  ['decodeError', (t, p) => decodeError({ type: C.NLMSG_ERROR, flags: t & 0x300, seq: 1, pid: 0, payload: p })],
  ['decodeDone', (t, p) => decodeDone({ type: C.NLMSG_DONE, flags: t & 0x300, seq: 1, pid: 0, payload: p })],
  ['splitDatagram', (_t, p) => splitDatagram(p)],
];

/** One mutation of `b`: flipped bits, set bytes, an attribute length rewritten, cut, extended. */
function mutate(b: Buffer, r: () => number): Buffer {
  const out = Buffer.from(b);
  const n = 1 + Math.floor(r() * 4);
  let cur = out;
  for (let i = 0; i < n && cur.length > 0; i++) {
    const at = Math.floor(r() * cur.length);
    switch (Math.floor(r() * 6)) {
      case 0: cur[at] ^= 1 << Math.floor(r() * 8); break;
      case 1: cur[at] = Math.floor(r() * 256); break;
      case 2: cur[at] = [0, 1, 3, 4, 0x7f, 0x80, 0xff][Math.floor(r() * 7)]!; break;
      case 3: if (at + 1 < cur.length) cur.writeUInt16LE(Math.floor(r() * 70000) & 0xffff, at); break;
      case 4: cur = cur.subarray(0, at); break;
      case 5: cur = Buffer.concat([cur, Buffer.from(Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * 256)))]); break;
    }
  }
  return cur;
}

function randomBytes(r: () => number): Buffer {
  return Buffer.from(Array.from({ length: Math.floor(r() * 96) }, () => Math.floor(r() * 256)));
}

function mustBeTyped(what: string, input: Buffer, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof UplinkdError)) assert.fail(`${what} threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${input.toString('hex')}`);
  }
}

const ITERATIONS = 4000;

test('fuzz: every decoder returns or throws UplinkdError on mutated and random input', () => {
  const r = rng(0x5eed);
  for (let i = 0; i < ITERATIONS; i++) {
    const seed = SEEDS[i % SEEDS.length]!;
    const input = i % 5 === 4 ? randomBytes(r) : mutate(seed.payload, r);
    const flags = Math.floor(r() * 0x400);
    for (const [name, decode] of DECODERS) mustBeTyped(name, input, () => decode(flags, input));
  }
});

class FuzzSocket extends EventEmitter implements RawSocketLike {
  readonly sent: NlMessage[] = [];
  send(msg: Uint8Array, _o: { port?: number }, cb: (err?: Error) => void): void {
    const reqs = splitDatagram(Buffer.from(msg)).messages;
    this.sent.push(...reqs);
    cb();
    // Dumps end at once (empty); other requests are acked.
    setImmediate(() => {
      for (const q of reqs) {
        this.emit('message', q.flags & C.NLM_F_DUMP
          ? encodeMessage(C.NLMSG_DONE, C.NLM_F_MULTI, q.seq, 1, Buffer.alloc(4)) : encodeAck(q.seq, 1, 0, q), { port: 0 });
      }
    });
  }
  addMembership(): void {}
  setRecvBufferSize(): void {}
  address() { return { port: 1 }; }
  unref(): void {}
  close(): void {}
}

/** A datagram of one to three messages, some mutated, with the sequence number of a pending request. */
function datagram(r: () => number, seq: number, types: number[]): Buffer {
  const parts: Buffer[] = [];
  const count = 1 + Math.floor(r() * 3);
  for (let k = 0; k < count; k++) {
    const seed = SEEDS[Math.floor(r() * SEEDS.length)]!;
    const type = r() < 0.5 ? seed.type : types[Math.floor(r() * types.length)]!;
    const payload = r() < 0.8 ? mutate(seed.payload, r) : randomBytes(r);
    parts.push(encodeMessage(type, Math.floor(r() * 0x400), seq, 0, payload));
  }
  const whole = Buffer.concat(parts);
  return r() < 0.3 ? mutate(whole, r) : whole;
}

test('fuzz: the request client settles or keeps each request and never throws out of its listener', async () => {
  const r = rng(0xc0ffee);
  const sock = new FuzzSocket();
  sock.send = () => {}; // nothing answers but the fuzz
  const client = new NetlinkClient({ socket: () => sock, timeoutMs: 50, log: () => {} });
  const settled: unknown[] = [];
  for (let i = 0; i < 300; i++) {
    const req = client.request(24, 0, Buffer.alloc(12)).then(() => 'ok', (e: unknown) => e);
    const dump = client.dump(26, Buffer.alloc(12)).then(() => 'ok', (e: unknown) => e);
    await new Promise((res) => setImmediate(res));
    for (const seq of [...(client as unknown as { pending: Map<number, unknown> }).pending.keys()]) {
      const info: DatagramInfo = { port: r() < 0.1 ? 77 : 0, ...(r() < 0.05 ? { truncated: 65536 } : {}) };
      assert.doesNotThrow(() => sock.emit('message', datagram(r, seq, [C.NLMSG_ERROR, C.NLMSG_DONE, C.NLMSG_OVERRUN, 24]), info));
    }
    settled.push(req, dump);
    if (i % 50 === 49) await Promise.all(settled.splice(0));
  }
  client.close();
  for (const outcome of await Promise.all(settled)) assert.ok(outcome === 'ok' || outcome instanceof UplinkdError, String(outcome));
});

test('fuzz: notifications that do not decode are skipped, logged and ask for a resync; the listener never throws', async () => {
  const r = rng(0xbeef);
  const sock = new FuzzSocket();
  const logged: string[] = [];
  const port = await NetlinkKernelPort.open({ socket: () => sock, log: (l) => logged.push(l) });
  let events = 0;
  const resyncs: string[] = [];
  const stop = port.subscribe(() => events++, (why) => resyncs.push(why ?? ''));
  const types = [C.RTM_NEWROUTE, C.RTM_DELROUTE, C.RTM_NEWRULE, C.RTM_NEWNEXTHOP, C.RTM_NEWLINK, C.RTM_DELLINK, C.RTM_NEWADDR, C.RTM_DELADDR];
  for (let i = 0; i < 3000; i++) {
    const info: DatagramInfo = { port: 0, ...(r() < 0.02 ? { truncated: 65536 } : {}) };
    assert.doesNotThrow(() => sock.emit('message', datagram(r, 0, types), info));
  }
  stop();
  port.close();
  assert.ok(events > 0, 'some mutations still decode');
  assert.ok(resyncs.length > 0 && logged.some((l) => l.startsWith('skipping netlink notification')));
});
