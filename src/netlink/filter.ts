// A classic BPF socket filter (linux/filter.h, Documentation/networking/filter.rst) for the rtnetlink
// subscriber socket: the kernel drops IPv4 route notifications of tables and protocols uplinkd does not
// read before they are queued, so a router whose BGP table changes a thousand times a second does not
// wake the daemon for each change. Pure: builds the program; src/netlink/sockopt.ts attaches it.
import { endianness } from 'node:os';
import { AF_INET, NLM_F_MULTI, NLM_F_REPLACE, RT_TABLE_COMPAT, RTA_TABLE, RTM_DELROUTE, RTM_NEWROUTE } from './constants';

/** One classic BPF instruction (struct sock_filter): opcode, jump offsets if true / false (u8), constant. */
export interface SockFilterInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// Opcodes (linux/bpf_common.h): class | size | mode.
const LD_W_ABS = 0x20;
const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const LD_W_LEN = 0x80;
const JMP_JEQ_K = 0x15;
const JMP_JGE_K = 0x35;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;

// Offsets in a notification (one message per datagram): struct nlmsghdr (16 bytes), then struct rtmsg.
const NLMSG_TYPE = 4;
const NLMSG_FLAGS = 6;
const RTM_FAMILY = 16;
const RTM_DST_LEN = 17;
const RTM_TABLE = 20;
const RTM_PROTOCOL = 21;
/** The first attribute after rtmsg: the kernel puts RTA_TABLE first (net/ipv4/fib_semantics.c fib_dump_info). */
const FIRST_NLA_TYPE = 30;
const FIRST_NLA_VALUE = 32;


/** What the subscriber reads of IPv4 routes (src/kernel/port.ts RouteInterest). */
export interface RouteNotificationInterest {
  /** Tables whose every route is read. */
  tables: readonly number[];
  /** Tables where only some routes are read: a replace there may replace one of them, so replaces pass. */
  replaceTables?: readonly number[];
  /** rtm_protocol values whose routes are read in any table. */
  protocols: readonly number[];
}

/**
 * The program that passes every datagram except an IPv4 route notification (RTM_NEWROUTE / RTM_DELROUTE,
 * not part of a dump: NLM_F_MULTI clear) whose destination is not a default route, whose rtm_protocol is
 * not in `interest.protocols` and whose table (rtm_table, or RTA_TABLE when rtm_table is RT_TABLE_COMPAT) is
 * not in `interest.tables` (nor, for a replace, NLM_F_REPLACE, in `interest.replaceTables`): the superset of
 * what src/kernel/netlink-port.ts decodes (mayBeOfInterest, and replaces in tables the view holds), so
 * nothing the daemon reads is lost. Anything it cannot judge (short, another family, RTA_TABLE not first) passes.
 *
 * The socket's fields are host-endian while BPF loads are big-endian: `littleEndian` (default: this host)
 * swaps the constants. Returns undefined when the tables and protocols are too many for the u8 jump offsets (about
 * 240 together): then everything is delivered.
 */
export function routeNotificationFilter(interest: RouteNotificationInterest, littleEndian = endianness() === 'LE'): SockFilterInsn[] | undefined {
  const tables = [...new Set(interest.tables)].sort((a, b) => a - b);
  const protocols = [...new Set(interest.protocols)].filter((p) => p >= 0 && p <= 255).sort((a, b) => a - b);
  const u16 = (v: number): number => (littleEndian ? ((v & 0xff) << 8) | (v >>> 8) : v);
  const u32 = (v: number): number => (littleEndian ? (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0 : v >>> 0);
  const replaceTables = [...new Set([...tables, ...(interest.replaceTables ?? [])])].sort((a, b) => a - b);

  // Built with symbolic targets, resolved to u8 offsets at the end; DROP and PASS are the last two instructions.
  type Target = 'next' | 'pass' | 'drop' | 'route' | 'replace';
  const code: { code: number; k: number; jt?: Target; jf?: Target; label?: 'route' | 'replace' }[] = [];
  const ld = (op: number, k: number, label?: 'route' | 'replace'): void => { code.push({ code: op, k, ...(label && { label }) }); };
  const jmp = (op: number, k: number, jt: Target, jf: Target): void => { code.push({ code: op, k, jt, jf }); };
  /** Passes a route of one of `list`, drops any other. */
  const tableCheck = (list: readonly number[], label?: 'replace'): void => {
    ld(LD_B_ABS, RTM_TABLE, label);
    for (const t of list.filter((t) => t < 256 && t !== RT_TABLE_COMPAT)) jmp(JMP_JEQ_K, t, 'pass', 'next');
    jmp(JMP_JEQ_K, RT_TABLE_COMPAT, 'next', 'drop');
    ld(LD_H_ABS, FIRST_NLA_TYPE);
    jmp(JMP_JEQ_K, u16(RTA_TABLE), 'next', 'pass');
    ld(LD_W_ABS, FIRST_NLA_VALUE);
    for (const t of list) jmp(JMP_JEQ_K, u32(t), 'pass', 'next');
    jmp(JMP_JEQ_K, 0, 'drop', 'drop');
  };

  ld(LD_H_ABS, NLMSG_TYPE);
  jmp(JMP_JEQ_K, u16(RTM_NEWROUTE), 'route', 'next');
  jmp(JMP_JEQ_K, u16(RTM_DELROUTE), 'route', 'pass');
  ld(LD_W_LEN, 0, 'route');
  jmp(JMP_JGE_K, FIRST_NLA_VALUE + 4, 'next', 'pass');
  ld(LD_B_ABS, RTM_FAMILY);
  jmp(JMP_JEQ_K, AF_INET, 'next', 'pass');
  ld(LD_B_ABS, RTM_DST_LEN);
  jmp(JMP_JEQ_K, 0, 'pass', 'next');
  ld(LD_B_ABS, RTM_PROTOCOL);
  for (const p of protocols) jmp(JMP_JEQ_K, p, 'pass', 'next');
  ld(LD_H_ABS, NLMSG_FLAGS);
  jmp(JMP_JSET_K, u16(NLM_F_MULTI), 'pass', 'next');
  jmp(JMP_JSET_K, u16(NLM_F_REPLACE), 'replace', 'next');
  tableCheck(tables);
  tableCheck(replaceTables, 'replace');
  const drop = code.length;
  const pass = drop + 1;
  const labelAt = (label: 'route' | 'replace'): number => code.findIndex((c) => c.label === label);
  const offset = (from: number, to: Target | undefined): number => {
    if (to === undefined || to === 'next') return 0;
    const at = to === 'pass' ? pass : to === 'drop' ? drop : labelAt(to);
    return at - from - 1;
  };
  const program = [
    ...code.map((c, i) => ({ code: c.code, jt: offset(i, c.jt), jf: offset(i, c.jf), k: c.k >>> 0 })),
    { code: RET_K, jt: 0, jf: 0, k: 0 },
    { code: RET_K, jt: 0, jf: 0, k: 0xffffffff },
  ];
  return program.every((i) => i.jt <= 255 && i.jf <= 255) ? program : undefined;
}
