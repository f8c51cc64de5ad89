// nf_tables change notifications (NETLINK_NETFILTER, multicast group NFNLGRP_NFTABLES): only what tells
// which table a message is about. Every nf_tables object message (table, chain, rule, set, set element,
// stateful object, flowtable) is nlmsghdr, struct nfgenmsg, then attributes whose type 1 is the table's name
// (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE,
// NFTA_FLOWTABLE_TABLE); NFT_MSG_NEWGEN ends each committed batch and names the process that made it.
// Sources: include/uapi/linux/netfilter/nfnetlink.h, include/uapi/linux/netfilter/nf_tables.h,
// include/uapi/linux/netfilter.h (NFPROTO_*).
import { eachAttr, readStr, type NlMessage } from './wire';

/** NFNLGRP_NFTABLES: the multicast group of nf_tables changes (nfnetlink.h enum nfnetlink_groups). */
export const NFNLGRP_NFTABLES = 7;
/** NFNL_SUBSYS_NFTABLES: the subsystem in the high byte of nlmsg_type (nfnetlink.h). */
export const NFNL_SUBSYS_NFTABLES = 10;
/** sizeof(struct nfgenmsg): nfgen_family (u8), version (u8), res_id (be16). */
export const NFGENMSG_LEN = 4;

/** enum nf_tables_msg_types (nf_tables.h), by value: the low byte of nlmsg_type. */
export const NFT_MSG = {
  NEWTABLE: 0, GETTABLE: 1, DELTABLE: 2,
  NEWCHAIN: 3, GETCHAIN: 4, DELCHAIN: 5,
  NEWRULE: 6, GETRULE: 7, DELRULE: 8,
  NEWSET: 9, GETSET: 10, DELSET: 11,
  NEWSETELEM: 12, GETSETELEM: 13, DELSETELEM: 14,
  NEWGEN: 15, GETGEN: 16, TRACE: 17,
  NEWOBJ: 18, GETOBJ: 19, DELOBJ: 20, GETOBJ_RESET: 21,
  NEWFLOWTABLE: 22, GETFLOWTABLE: 23, DELFLOWTABLE: 24, GETRULE_RESET: 25,
  DESTROYTABLE: 26, DESTROYCHAIN: 27, DESTROYRULE: 28, DESTROYSET: 29, DESTROYSETELEM: 30, DESTROYOBJ: 31,
  DESTROYFLOWTABLE: 32, GETSETELEM_RESET: 33,
} as const;

const MSG_NAMES = new Map<number, string>(Object.entries(NFT_MSG).map(([name, v]) => [v, name.toLowerCase()]));

/** NFPROTO_* (include/uapi/linux/netfilter.h): nfgen_family; nft(8) calls IPV4 `ip`, IPV6 `ip6`. */
export const NFPROTO = { UNSPEC: 0, INET: 1, IPV4: 2, ARP: 3, NETDEV: 5, BRIDGE: 7, IPV6: 10 } as const;

/** Attribute type 1 of every object message: the table's name (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, ...). */
const NFTA_TABLE = 1;
/** enum nft_gen_attributes (nf_tables.h). */
const NFTA_GEN_ID = 1;
const NFTA_GEN_PROC_PID = 2;
const NFTA_GEN_PROC_NAME = 3;
/** NFT_TABLE_MAXNAMELEN (nf_tables.h), with its NUL. */
const NFT_TABLE_MAXNAMELEN = 256;

/** One nf_tables notification, as far as uplinkd reads it. */
export type NftNotification =
  /** A change to an object of table `family table` (`msg`: the kernel's name without NFT_MSG_, lower case: `deltable`). */
  | { kind: 'object'; msg: string; family: number; table: string }
  /** NFT_MSG_NEWGEN: a batch was committed (by process `procName`[`pid`] when the kernel says). */
  | { kind: 'gen'; genId?: number; pid?: number; procName?: string }
  /** Another nfnetlink subsystem, or an nf_tables message that is about no table (NFT_MSG_TRACE). */
  | { kind: 'other'; type: number }
  /** An nf_tables message that does not parse: which table it was about is unknown. */
  | { kind: 'malformed'; type: number; reason: string };

/**
 * Decodes one message received on NFNLGRP_NFTABLES: nlmsg_type = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*, payload =
 * struct nfgenmsg (nfgen_family: NFPROTO_*) then attributes. Pure; never throws: what does not parse is `malformed`.
 */
export function decodeNftNotification(m: NlMessage): NftNotification {
  if (m.type >> 8 !== NFNL_SUBSYS_NFTABLES) return { kind: 'other', type: m.type };
  const msg = m.type & 0xff;
  if (msg === NFT_MSG.TRACE) return { kind: 'other', type: m.type };
  if (m.payload.length < NFGENMSG_LEN) {
    return { kind: 'malformed', type: m.type, reason: `payload of ${m.payload.length} bytes, shorter than struct nfgenmsg` };
  }
  try {
    if (msg === NFT_MSG.NEWGEN) {
      const gen: { kind: 'gen'; genId?: number; pid?: number; procName?: string } = { kind: 'gen' };
      eachAttr(m.payload, NFGENMSG_LEN, (type, off, len) => {
        // NLA_U32 attributes of nf_tables are big endian.
        if (type === NFTA_GEN_ID && len >= 4) gen.genId = m.payload.readUInt32BE(off);
        else if (type === NFTA_GEN_PROC_PID && len >= 4) gen.pid = m.payload.readUInt32BE(off);
        else if (type === NFTA_GEN_PROC_NAME) gen.procName = readStr(m.payload.subarray(off, off + len));
      });
      return gen;
    }
    let table: string | undefined;
    eachAttr(m.payload, NFGENMSG_LEN, (type, off, len) => {
      if (type === NFTA_TABLE && table === undefined && len > 0 && len <= NFT_TABLE_MAXNAMELEN) table = readStr(m.payload.subarray(off, off + len));
    });
    if (!table) return { kind: 'malformed', type: m.type, reason: 'no table name (attribute 1)' };
    return { kind: 'object', msg: MSG_NAMES.get(msg) ?? `msg ${msg}`, family: m.payload[0]!, table };
  } catch (e) {
    return { kind: 'malformed', type: m.type, reason: (e as Error).message };
  }
}
