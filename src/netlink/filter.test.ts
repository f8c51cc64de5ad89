import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeNotificationFilter, type SockFilterInsn } from './filter';
import * as C from './constants';

/** A classic BPF interpreter for the instructions the filter uses (the kernel's semantics: loads are big-endian, out of bounds drops). */
function run(program: SockFilterInsn[], pkt: Buffer): number {
  let a = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc]!;
    const load = (size: number): boolean => {
      if (k + size > pkt.length) return false;
      a = size === 4 ? pkt.readUInt32BE(k) : size === 2 ? pkt.readUInt16BE(k) : pkt.readUInt8(k);
      return true;
    };
    switch (code) {
      case 0x20: if (!load(4)) return 0; break;
      case 0x28: if (!load(2)) return 0; break;
      case 0x30: if (!load(1)) return 0; break;
      case 0x80: a = pkt.length; break;
      case 0x15: pc += a === k ? jt : jf; break;
      case 0x35: pc += a >= k ? jt : jf; break;
      case 0x45: pc += (a & k) !== 0 ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unexpected opcode ${code}`);
    }
  }
  throw new Error('fell off the end');
}

/** A route notification as the kernel sends it (host-endian, RTA_TABLE first), on a little-endian host. */
function routeMsg(o: { type?: number; flags?: number; family?: number; dstLen?: number; table: number; protocol: number; tableAttrFirst?: boolean }): Buffer {
  const attrs = Buffer.alloc(16);
  attrs.writeUInt16LE(8, 0);
  attrs.writeUInt16LE(o.tableAttrFirst === false ? C.RTA_DST : C.RTA_TABLE, 2);
  attrs.writeUInt32LE(o.tableAttrFirst === false ? 0x0a000000 : o.table, 4);
  attrs.writeUInt16LE(8, 8);
  attrs.writeUInt16LE(o.tableAttrFirst === false ? C.RTA_TABLE : C.RTA_DST, 10);
  attrs.writeUInt32LE(o.tableAttrFirst === false ? o.table : 0x0a000000, 12);
  const rtm = Buffer.from([o.family ?? C.AF_INET, o.dstLen ?? 24, 0, 0, o.table < 256 ? o.table : C.RT_TABLE_COMPAT, o.protocol, 0, 1, 0, 0, 0, 0]);
  const hdr = Buffer.alloc(16);
  hdr.writeUInt32LE(16 + rtm.length + attrs.length, 0);
  hdr.writeUInt16LE(o.type ?? C.RTM_NEWROUTE, 4);
  hdr.writeUInt16LE(o.flags ?? 0, 6);
  return Buffer.concat([hdr, rtm, attrs]);
}

const interest = { tables: [254, 1000, 1141, 1200], replaceTables: [3001, 50], protocols: [117] };
const program = routeNotificationFilter(interest, true)!;
const passes = (pkt: Buffer): boolean => run(program, pkt) !== 0;

test('route notifications of foreign tables and protocols are dropped, both for new and deleted routes', () => {
  assert.equal(passes(routeMsg({ table: 3000, protocol: 186 })), false); // a BGP route in table 3000
  assert.equal(passes(routeMsg({ type: C.RTM_DELROUTE, table: 3000, protocol: 186 })), false);
  assert.equal(passes(routeMsg({ table: 100, protocol: 4 })), false); // small table, in rtm_table only
  assert.equal(passes(routeMsg({ table: 3000, protocol: 186, flags: C.NLM_F_REPLACE })), false);
});

test('what the daemon reads passes: its tables (small and compat), its protocol in any table, default routes anywhere', () => {
  assert.equal(passes(routeMsg({ table: 1141, protocol: 4 })), true);
  assert.equal(passes(routeMsg({ table: 254, protocol: 2 })), true);
  assert.equal(passes(routeMsg({ type: C.RTM_DELROUTE, table: 1200, protocol: 186 })), true);
  assert.equal(passes(routeMsg({ table: 3000, protocol: 117 })), true);
  assert.equal(passes(routeMsg({ table: 3000, protocol: 16, dstLen: 0 })), true); // a DHCP client's default in another table
});

test('in tables the view holds some routes of, only replaces pass (one may replace a route of interest)', () => {
  assert.equal(passes(routeMsg({ table: 3001, protocol: 186, flags: C.NLM_F_REPLACE })), true);
  assert.equal(passes(routeMsg({ table: 50, protocol: 186, flags: C.NLM_F_REPLACE | C.NLM_F_CREATE })), true);
  assert.equal(passes(routeMsg({ table: 1141, protocol: 186, flags: C.NLM_F_REPLACE })), true);
  assert.equal(passes(routeMsg({ table: 3001, protocol: 186 })), false);
  assert.equal(passes(routeMsg({ type: C.RTM_DELROUTE, table: 50, protocol: 186 })), false);
});

test('what the filter cannot judge passes: dumps, other families, other messages, short ones, RTA_TABLE not first', () => {
  assert.equal(passes(routeMsg({ table: 3000, protocol: 186, flags: C.NLM_F_MULTI })), true);
  assert.equal(passes(routeMsg({ table: 3000, protocol: 186, family: 10 })), true);
  assert.equal(passes(routeMsg({ table: 3000, protocol: 186, tableAttrFirst: false })), true);
  assert.equal(passes(routeMsg({ type: C.RTM_NEWRULE, table: 3000, protocol: 186 })), true);
  assert.equal(passes(routeMsg({ table: 3000, protocol: 186 }).subarray(0, 30)), true);
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(C.NLMSG_ERROR, 4);
  assert.equal(passes(ack), true);
});

test('the constants follow the host byte order; too many tables build no filter rather than a wrong one', () => {
  const be = routeNotificationFilter(interest, false)!;
  assert.notDeepEqual(be, program);
  assert.equal(be.length, program.length);
  assert.equal(routeNotificationFilter({ tables: Array.from({ length: 300 }, (_, i) => 1000 + i), protocols: [117] }), undefined);
  const many = routeNotificationFilter({ tables: Array.from({ length: 100 }, (_, i) => 1000 + i), protocols: [117] }, true)!;
  assert.equal(run(many, routeMsg({ table: 1099, protocol: 4 })) !== 0, true);
  assert.equal(run(many, routeMsg({ table: 1100, protocol: 4 })), 0);
});
