import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNftNotification, NFGENMSG_LEN, NFNL_SUBSYS_NFTABLES, NFPROTO, NFT_MSG, type NftNotification } from './nftables';
import { attr, splitDatagram, strAttr, type NlMessage } from './wire';
import { prng } from '../../test/support/prng';

/** struct nfgenmsg: family, NFNETLINK_V0, res_id (big endian). */
function nfgenmsg(family: number, resId = 0): Buffer {
  const b = Buffer.alloc(NFGENMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt16BE(resId, 2);
  return b;
}
const be32 = (type: number, v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return attr(type, b);
};
const nft = (msg: number, payload: Buffer): NlMessage => ({ type: (NFNL_SUBSYS_NFTABLES << 8) | msg, flags: 0, seq: 7, pid: 4242, payload });

/** A rule as `nft add rule ip uplinkd output ...` notifies it: table, chain, handle, expressions. */
const ruleMsg = (family: number, table: string) => nft(NFT_MSG.NEWRULE, Buffer.concat([
  nfgenmsg(family), strAttr(1, table), strAttr(2, 'output'), attr(3, Buffer.alloc(8)), attr(4 | 0x8000, Buffer.alloc(12)),
]));

test('object messages name their kernel message, family and table (attribute 1 of every kind)', () => {
  assert.deepEqual(decodeNftNotification(nft(NFT_MSG.DELTABLE, Buffer.concat([nfgenmsg(NFPROTO.IPV4), strAttr(1, 'uplinkd'), be32(2, 0)]))),
    { kind: 'object', msg: 'deltable', family: 2, table: 'uplinkd' });
  assert.deepEqual(decodeNftNotification(ruleMsg(NFPROTO.INET, 'firewalld')), { kind: 'object', msg: 'newrule', family: 1, table: 'firewalld' });
  for (const [name, type] of Object.entries(NFT_MSG)) {
    if (type === NFT_MSG.NEWGEN || type === NFT_MSG.TRACE || type === NFT_MSG.GETGEN) continue;
    const n = decodeNftNotification(nft(type, Buffer.concat([nfgenmsg(NFPROTO.IPV6), strAttr(1, 't')])));
    assert.deepEqual(n, { kind: 'object', msg: name.toLowerCase(), family: 10, table: 't' }, name);
  }
});

test('NFT_MSG_NEWGEN: generation, process id and name, big endian', () => {
  const gen = nft(NFT_MSG.NEWGEN, Buffer.concat([nfgenmsg(NFPROTO.UNSPEC, 0x1234), be32(1, 0x01020304), be32(2, 4321), strAttr(3, 'nft')]));
  assert.deepEqual(decodeNftNotification(gen), { kind: 'gen', genId: 0x01020304, pid: 4321, procName: 'nft' });
});

test('other subsystems and NFT_MSG_TRACE are about no table; what does not parse is malformed, never thrown', () => {
  assert.deepEqual(decodeNftNotification({ type: (1 << 8) | 0, flags: 0, seq: 0, pid: 0, payload: nfgenmsg(2) }), { kind: 'other', type: 256 });
  assert.equal(decodeNftNotification(nft(NFT_MSG.TRACE, Buffer.concat([nfgenmsg(2), strAttr(1, 'uplinkd')]))).kind, 'other');
  const cases: [string, Buffer][] = [
    ['short of struct nfgenmsg', Buffer.alloc(2)],
    ['no attributes', nfgenmsg(2)],
    ['no table attribute', Buffer.concat([nfgenmsg(2), strAttr(2, 'chain')])],
    ['an empty table name', Buffer.concat([nfgenmsg(2), attr(1, Buffer.alloc(0))])],
    ['an attribute running past the end', Buffer.concat([nfgenmsg(2), strAttr(1, 'uplinkd').subarray(0, 8)])],
    ['an attribute length below its header', Buffer.concat([nfgenmsg(2), Buffer.from([2, 0, 1, 0])])],
    ['a name longer than NFT_TABLE_MAXNAMELEN', Buffer.concat([nfgenmsg(2), strAttr(1, 'x'.repeat(300))])],
  ];
  for (const [what, payload] of cases) assert.equal(decodeNftNotification(nft(NFT_MSG.NEWCHAIN, payload)).kind, 'malformed', what);
  // NEWGEN with a broken attribute: malformed too (which batch ended is unknown).
  assert.equal(decodeNftNotification(nft(NFT_MSG.NEWGEN, Buffer.concat([nfgenmsg(0), Buffer.from([9, 0, 1, 0])]))).kind, 'malformed');
  // A short u32 in NEWGEN is left out, not misread.
  assert.deepEqual(decodeNftNotification(nft(NFT_MSG.NEWGEN, Buffer.concat([nfgenmsg(0), attr(2, Buffer.from([1, 2]))]))), { kind: 'gen' });
});

/** Mutations of a valid message: flipped and set bytes, rewritten lengths, cuts and junk appended. */
function mutate(b: Buffer, r: () => number): Buffer {
  let cur = Buffer.from(b);
  for (let i = 0, n = 1 + Math.floor(r() * 4); i < n && cur.length > 0; i++) {
    const at = Math.floor(r() * cur.length);
    switch (Math.floor(r() * 5)) {
      case 0: cur[at] ^= 1 << Math.floor(r() * 8); break;
      case 1: cur[at] = [0, 1, 3, 4, 0x7f, 0x80, 0xff][Math.floor(r() * 7)]!; break;
      case 2: if (at + 1 < cur.length) cur.writeUInt16LE(Math.floor(r() * 0x10000), at); break;
      case 3: cur = cur.subarray(0, at); break;
      case 4: cur = Buffer.concat([cur, Buffer.from(Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * 256)))]); break;
    }
  }
  return cur;
}

test('fuzz: mutated and random nf_tables datagrams decode to a result, never an exception', () => {
  const r = prng(0x6e6674);
  const seeds = [
    ruleMsg(NFPROTO.IPV4, 'uplinkd'),
    nft(NFT_MSG.DELTABLE, Buffer.concat([nfgenmsg(2), strAttr(1, 'uplinkd')])),
    nft(NFT_MSG.NEWGEN, Buffer.concat([nfgenmsg(0), be32(1, 9), be32(2, 1), strAttr(3, 'nft')])),
  ];
  const kinds = new Set<NftNotification['kind']>();
  for (let i = 0; i < 5000; i++) {
    const seed = seeds[i % seeds.length]!;
    const payload = i % 7 === 6 ? Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256))) : mutate(seed.payload, r);
    const type = i % 11 === 10 ? Math.floor(r() * 0x10000) : seed.type;
    let n: NftNotification;
    try {
      n = decodeNftNotification({ ...seed, type, payload });
    } catch (e) {
      assert.fail(`decodeNftNotification threw ${(e as Error).message} on type ${type} payload ${payload.toString('hex')}`);
    }
    kinds.add(n.kind);
    if (n.kind === 'object') assert.ok(n.table.length > 0 && n.table.length < 256);
    // A whole datagram framed around it splits without throwing too.
    splitDatagram(payload);
  }
  assert.deepEqual([...kinds].sort(), ['gen', 'malformed', 'object', 'other'], 'the mutations reach every outcome');
});
