import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { UplinkdError } from '../errors';
import { NFGENMSG_LEN, NFNL_SUBSYS_NFTABLES, NFNLGRP_NFTABLES, NFPROTO, NFT_MSG } from '../netlink/nftables';
import type { DatagramInfo, RawSocketLike } from '../netlink/socket';
import { attr, encodeMessage, strAttr, type NlMessage } from '../netlink/wire';
import { OwnTableChanges, threadGroupOf, watchNftables } from './events';

function message(msg: number, family: number, attrs: Buffer[]): NlMessage {
  const gen = Buffer.alloc(NFGENMSG_LEN);
  gen.writeUInt8(family, 0);
  return { type: (NFNL_SUBSYS_NFTABLES << 8) | msg, flags: 0, seq: 0, pid: 0, payload: Buffer.concat([gen, ...attrs]) };
}
const obj = (msg: number, family: number, table: string) => message(msg, family, [strAttr(1, table)]);
function newgen(pid: number, name: string): NlMessage {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(pid, 0);
  return message(NFT_MSG.NEWGEN, NFPROTO.UNSPEC, [attr(2, b), strAttr(3, name)]);
}
const datagram = (msgs: NlMessage[]): Buffer => Buffer.concat(msgs.map((m) => encodeMessage(m.type, m.flags, m.seq, m.pid, m.payload)));

test('only `table ip uplinkd` is a cause, once its batch ends (NEWGEN); same name in another family and other tables are not', () => {
  const c = new OwnTableChanges(() => undefined);
  assert.equal(c.add([obj(NFT_MSG.NEWRULE, NFPROTO.INET, 'uplinkd'), obj(NFT_MSG.DELTABLE, NFPROTO.IPV4, 'filter')]), undefined);
  assert.equal(c.add([newgen(7, 'firewalld')]), undefined);
  assert.equal(c.add([newgen(7, 'nft')]), undefined);
  assert.equal(c.add([]), undefined);
  // `nft flush ruleset`: every table's rules, chains, then the tables, over several datagrams; the batch's end alone.
  assert.equal(c.add([obj(NFT_MSG.DELRULE, NFPROTO.INET, 'filter'), obj(NFT_MSG.DELRULE, NFPROTO.IPV4, 'uplinkd')]), undefined);
  assert.equal(c.add([obj(NFT_MSG.DELCHAIN, NFPROTO.IPV4, 'uplinkd'), obj(NFT_MSG.DELTABLE, NFPROTO.INET, 'filter'), obj(NFT_MSG.DELTABLE, NFPROTO.IPV4, 'uplinkd')]), undefined);
  assert.equal(c.add([newgen(4242, 'nft')]), 'nftables: table ip uplinkd changed (delchain, delrule, deltable) by nft[4242]');
  assert.equal(c.add([newgen(4243, 'nft')]), undefined, 'the next batch starts empty');
  assert.equal(c.add([obj(NFT_MSG.NEWTABLE, NFPROTO.IPV4, 'uplinkd'), message(NFT_MSG.NEWGEN, NFPROTO.UNSPEC, [])]), 'nftables: table ip uplinkd changed (newtable)');
});

test('the committer is named by its process, not the thread that committed; a commit of this process says so', () => {
  const c = new OwnTableChanges((tid) => (tid === 4300 ? 4242 : tid === 9001 ? process.pid : undefined));
  c.add([obj(NFT_MSG.NEWRULE, NFPROTO.IPV4, 'uplinkd')]);
  assert.equal(c.add([newgen(4300, 'nft')]), 'nftables: table ip uplinkd changed (newrule) by nft[4242]');
  c.add([obj(NFT_MSG.NEWTABLE, NFPROTO.IPV4, 'uplinkd')]);
  assert.equal(c.add([newgen(9001, 'node')]), `nftables: table ip uplinkd changed (newtable) by this uplinkd[${process.pid}]`);
  c.add([obj(NFT_MSG.NEWTABLE, NFPROTO.IPV4, 'uplinkd')]);
  assert.equal(c.add([newgen(5, 'nft')]), 'nftables: table ip uplinkd changed (newtable) by nft[5]', 'a thread gone: its id');
});

test('threadGroupOf reads /proc: this process is its own thread group; a thread id that does not exist is undefined', () => {
  assert.equal(threadGroupOf(process.pid), process.pid);
  assert.equal(threadGroupOf(2 ** 30), undefined);
});

test('a notification that does not parse may have been about our table: it is a cause at once, with what was pending', () => {
  const c = new OwnTableChanges();
  const broken = message(NFT_MSG.NEWCHAIN, NFPROTO.IPV4, [Buffer.from([2, 0, 1, 0])]);
  assert.match(c.add([obj(NFT_MSG.NEWRULE, NFPROTO.INET, 'fw'), broken]) ?? '', /^nftables: 1 undecodable notification\(s\) \(malformed netlink message: attribute length 2/);
  c.add([obj(NFT_MSG.NEWRULE, NFPROTO.IPV4, 'uplinkd')]);
  assert.match(c.add([broken]) ?? '', /^nftables: table ip uplinkd changed \(newrule\); 1 undecodable/);
  assert.equal(c.add([newgen(1, 'nft')]), undefined, 'reported already');
});

class FakeNetfilterSocket extends EventEmitter implements RawSocketLike {
  groups: number[] = [];
  closed = false;
  drops = 0;
  send(): void {}
  addMembership(g: number): void {
    this.groups.push(g);
  }
  setRecvBufferSize(): void {}
  receiveDrops(): number {
    return this.drops;
  }
  address() {
    return { port: 99 };
  }
  unref(): void {}
  close(): void {
    this.closed = true;
  }
  deliver(buf: Buffer, info: DatagramInfo = { port: 0 }): void {
    this.emit('message', buf, info);
  }
}

test('watchNftables joins NFNLGRP_NFTABLES, reports our table\'s changes and lost notifications, drops the rest; closes', async () => {
  const sock = new FakeNetfilterSocket();
  const causes: string[] = [];
  const errors: Error[] = [];
  const stop = watchNftables(() => sock)((c) => causes.push(c), (e) => errors.push(e));
  assert.deepEqual(sock.groups, [NFNLGRP_NFTABLES]);
  sock.deliver(datagram([obj(NFT_MSG.NEWRULE, NFPROTO.INET, 'firewalld'), newgen(1, 'firewalld')]));
  assert.deepEqual(causes, [], 'a foreign table');
  sock.deliver(datagram([obj(NFT_MSG.DELTABLE, NFPROTO.IPV4, 'uplinkd')]));
  assert.deepEqual(causes, [], 'until the batch ends');
  // A thread id above any pid_max: no /proc entry, named as it is.
  sock.deliver(datagram([newgen(2 ** 30, 'nft')]));
  assert.deepEqual(causes, [`nftables: table ip uplinkd changed (deltable) by nft[${2 ** 30}]`]);
  sock.deliver(datagram([obj(NFT_MSG.DELTABLE, NFPROTO.IPV4, 'uplinkd')]), { port: 1234 });
  assert.equal(causes.length, 1, 'not from the kernel: dropped');
  assert.equal(errors.length, 1);
  sock.drops = 3; // NETLINK_NO_ENOBUFS: an overflow shows as a grown drop count, read once the datagrams of this turn are in
  sock.deliver(datagram([obj(NFT_MSG.NEWRULE, NFPROTO.INET, 'firewalld')]));
  await new Promise((resolve) => setImmediate(resolve));
  assert.match(causes[1] ?? '', /^nftables notifications lost \(netlink socket overrun \(3 dropped\)/);
  stop();
  assert.ok(sock.closed);
});

test('watchNftables: a socket that cannot be opened, count its drops or join the group is a typed error, and nothing stays open', () => {
  assert.throws(() => watchNftables(() => { throw new Error('EPROTONOSUPPORT'); })(() => undefined, () => undefined),
    (e: unknown) => e instanceof UplinkdError && /NETLINK_NETFILTER.*EPROTONOSUPPORT/.test(e.message));
  const counting = new FakeNetfilterSocket();
  counting.receiveDrops = () => undefined as unknown as number; // no drop count: NETLINK_NO_ENOBUFS is not set
  assert.throws(() => watchNftables(() => counting)(() => undefined, () => undefined),
    (e: unknown) => e instanceof UplinkdError && /NETLINK_NO_ENOBUFS is not set/.test(e.message));
  assert.ok(counting.closed);
  const sock = new FakeNetfilterSocket();
  sock.addMembership = () => { throw new Error('EPERM'); };
  assert.throws(() => watchNftables(() => sock)(() => undefined, () => undefined), (e: unknown) => e instanceof UplinkdError && /EPERM/.test(e.message));
  assert.ok(sock.closed);
});
