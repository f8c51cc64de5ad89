// Following changes to uplinkd's nftables table as they happen: a NETLINK_NETFILTER socket in the multicast group
// NFNLGRP_NFTABLES receives every committed nf_tables change of the namespace (the kernel sends them to
// listeners whoever made them: nft, firewalld, iptables-nft, `nft flush ruleset`). Only messages about
// `table ip uplinkd` matter; those of other tables are dropped after reading their family and table name.
import { UplinkdError } from '../errors';
import { NETLINK_NETFILTER } from '../netlink/constants';
import { decodeNftNotification, NFNLGRP_NFTABLES, NFPROTO } from '../netlink/nftables';
import { openNetlinkSocket, subscribe, type SocketFactory } from '../netlink/socket';
import type { NlMessage } from '../netlink/wire';
import { PIN_TABLE } from './ruleset';

/** `table ip uplinkd` as nf_tables names it: NFPROTO_IPV4 and the name. */
const OWN_FAMILY = NFPROTO.IPV4;
const OWN_NAME = PIN_TABLE.split(' ')[1]!;

/**
 * What one datagram of notifications says about `table ip uplinkd`: undefined when nothing (other tables only),
 * else a cause for the daemon's log, e.g. `nftables: table ip uplinkd changed (delchain, deltable) by nft[4242]`.
 * A message that does not parse may have been about it, and so is a cause too. Pure; never throws.
 */
export function ownTableCause(messages: NlMessage[]): string | undefined {
  const kinds = new Set<string>();
  const broken: string[] = [];
  let by: string | undefined;
  for (const m of messages) {
    const n = decodeNftNotification(m);
    if (n.kind === 'object') {
      if (n.family === OWN_FAMILY && n.table === OWN_NAME) kinds.add(n.msg);
    } else if (n.kind === 'malformed') {
      broken.push(n.reason);
    } else if (n.kind === 'gen' && (kinds.size > 0 || broken.length > 0) && n.procName !== undefined) {
      by = `${n.procName}${n.pid !== undefined ? `[${n.pid}]` : ''}`;
    }
  }
  if (kinds.size === 0 && broken.length === 0) return undefined;
  const what = kinds.size > 0 ? `table ${PIN_TABLE} changed (${[...kinds].sort().join(', ')})` : '';
  const undecodable = broken.length > 0 ? `${broken.length} undecodable notification(s) (${broken[0]})` : '';
  return `nftables: ${[what, undecodable].filter(Boolean).join('; ')}${by ? ` by ${by}` : ''}`;
}

/** A NETLINK_NETFILTER socket set up as openNetlinkSocket() does (NETLINK_NO_ENOBUFS and its drop count with the addon). */
export const openNetfilterSocket: SocketFactory = () => openNetlinkSocket(NETLINK_NETFILTER);

/** Subscribes to changes of `table ip uplinkd`; returns the function that unsubscribes. */
export type NftWatch = (onChange: (cause: string) => void, onError: (e: Error) => void) => () => void;

/**
 * Calls `onChange(cause)` when a change to `table ip uplinkd` (made by anyone, uplinkd included) is committed, when a
 * notification does not parse, and when notifications were lost (socket overrun, truncated datagram): then what
 * happened to the table is unknown. Other tables' changes cost one decode of family and name per message.
 * Throws UplinkdError('netlink') when the socket cannot be opened or join NFNLGRP_NFTABLES (no nf_tables in the
 * kernel, no CAP_NET_ADMIN); `onError` gets later socket errors (a datagram not from the kernel). `socket`: tests.
 */
export function watchNftables(socket: SocketFactory = openNetfilterSocket): NftWatch {
  return (onChange, onError) => {
    const sub = subscribe(
      [NFNLGRP_NFTABLES],
      (messages) => {
        const cause = ownTableCause(messages);
        if (cause) onChange(cause);
      },
      (reason) => onChange(`nftables notifications lost (${reason})`),
      onError,
      {
        socket: () => {
          try {
            return socket();
          } catch (e) {
            throw new UplinkdError('netlink', `cannot open a NETLINK_NETFILTER socket: ${(e as Error).message}`, { cause: e });
          }
        },
      },
    );
    return () => sub.close();
  };
}
