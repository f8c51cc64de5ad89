// Following changes to uplinkd's nftables table as they happen: a NETLINK_NETFILTER socket in the multicast group
// NFNLGRP_NFTABLES receives every committed nf_tables change of the namespace (the kernel sends them to
// listeners whoever made them: nft, firewalld, iptables-nft, `nft flush ruleset`). Only messages about
// `table ip uplinkd` matter; those of other tables are dropped after reading their family and table name.
import { readFileSync } from 'node:fs';
import { UplinkdError } from '../errors';
import { NETLINK_NETFILTER } from '../netlink/constants';
import { decodeNftNotification, NFNLGRP_NFTABLES, NFPROTO } from '../netlink/nftables';
import { openNetlinkSocket, subscribe, type RawSocketLike, type SocketFactory } from '../netlink/socket';
import { addonFailure } from '../netlink/sockopt';
import type { NlMessage } from '../netlink/wire';
import { PIN_TABLE } from './ruleset';

/** `table ip uplinkd` as nf_tables names it: NFPROTO_IPV4 and the name. */
const OWN_FAMILY = NFPROTO.IPV4;
const OWN_NAME = PIN_TABLE.split(' ')[1]!;

/**
 * What nf_tables notifications say about `table ip uplinkd`, batch by batch. The kernel sends a committed batch's
 * object messages, then NFT_MSG_NEWGEN in a datagram of its own (net/netfilter/nf_tables_api.c nf_tables_commit:
 * nft_commit_notify, then nf_tables_gen_notify), both queued before any is read, so waiting for NEWGEN delays
 * nothing and lets the cause name the process that made the change. Pure apart from its pending batch; never throws.
 */
export class OwnTableChanges {
  private readonly kinds = new Set<string>();

  /** `threadGroup`: the process of a thread id (NEWGEN names the committing thread); tests inject it. */
  constructor(private readonly threadGroup: (tid: number) => number | undefined = threadGroupOf) {}

  /**
   * Reads one datagram's messages. Returns a cause for the daemon's log when a batch that touched the table ended,
   * e.g. `nftables: table ip uplinkd changed (delchain, deltable) by nft[4242]`, or when a message does not parse
   * (it may have been about the table): `nftables: 1 undecodable notification(s) (...)`; else undefined.
   */
  add(messages: NlMessage[]): string | undefined {
    const broken: string[] = [];
    let ended: string | undefined;
    for (const m of messages) {
      const n = decodeNftNotification(m);
      if (n.kind === 'object') {
        if (n.family === OWN_FAMILY && n.table === OWN_NAME) this.kinds.add(n.msg);
      } else if (n.kind === 'malformed') {
        broken.push(n.reason);
      } else if (n.kind === 'gen' && this.kinds.size > 0) {
        ended = `table ${PIN_TABLE} changed (${[...this.kinds].sort().join(', ')})${this.committer(n.procName, n.pid)}`;
        this.kinds.clear();
      }
    }
    if (broken.length > 0) {
      // Whatever is pending is reported with it: the batch's end may be the message that broke.
      const pending = this.kinds.size > 0 ? `table ${PIN_TABLE} changed (${[...this.kinds].sort().join(', ')})` : undefined;
      this.kinds.clear();
      return `nftables: ${[ended, pending, `${broken.length} undecodable notification(s) (${broken[0]})`].filter(Boolean).join('; ')}`;
    }
    return ended && `nftables: ${ended}`;
  }

  /** ` by NAME[PID]`, PID the process (not the thread) that committed; ` by this uplinkd[PID]` for ourselves. */
  private committer(procName: string | undefined, tid: number | undefined): string {
    if (procName === undefined) return '';
    if (tid === undefined) return ` by ${procName}`;
    const pid = this.threadGroup(tid) ?? tid;
    return pid === process.pid ? ` by this uplinkd[${pid}]` : ` by ${procName}[${pid}]`;
  }
}

/**
 * The thread group (process id) of thread `tid`: `Tgid:` of /proc/TID/status (proc(5)); undefined when the thread
 * is gone. NFTA_GEN_PROC_PID is task_pid_nr(current), the committing thread's id (net/netfilter/nf_tables_api.c
 * nf_tables_fill_gen_info): a commit from a worker thread of a process names that thread.
 */
export function threadGroupOf(tid: number): number | undefined {
  try {
    const m = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A NETLINK_NETFILTER socket set up as openNetlinkSocket() does (NETLINK_NO_ENOBUFS and its drop count with the addon). */
export const openNetfilterSocket: SocketFactory = () => openNetlinkSocket(NETLINK_NETFILTER);

/** Subscribes to changes of `table ip uplinkd`; returns the function that unsubscribes. */
export type NftWatch = (onChange: (cause: string) => void, onError: (e: Error) => void) => () => void;

/**
 * Calls `onChange(cause)` when a change to `table ip uplinkd` (made by anyone, uplinkd included) is committed, when a
 * notification does not parse, and when notifications were lost (socket overrun, truncated datagram): then what
 * happened to the table is unknown. Other tables' changes cost one decode of family and name per message.
 * Throws UplinkdError('netlink') when the socket cannot be opened, cannot count its drops instead of raising ENOBUFS
 * (the addon not built) or cannot join NFNLGRP_NFTABLES (no nf_tables in the kernel, no CAP_NET_ADMIN); `onError`
 * gets later socket errors (a datagram not from the kernel). `socket`: tests.
 */
export function watchNftables(socket: SocketFactory = openNetfilterSocket): NftWatch {
  return (onChange, onError) => {
    const changes = new OwnTableChanges();
    const sub = subscribe(
      [NFNLGRP_NFTABLES],
      (messages) => {
        const cause = changes.add(messages);
        if (cause) onChange(cause);
      },
      (reason) => onChange(`nftables notifications lost (${reason})`),
      onError,
      {
        socket: () => {
          let sock: RawSocketLike;
          try {
            sock = socket();
          } catch (e) {
            throw new UplinkdError('netlink', `cannot open a NETLINK_NETFILTER socket: ${(e as Error).message}`, { cause: e });
          }
          // Without NETLINK_NO_ENOBUFS (the addon sets it with the drop count) a burst of notifications (a large
          // firewall loaded) would raise ENOBUFS, which the `netlink` package turns into an abort of the process.
          if (sock.receiveDrops?.() === undefined) {
            sock.close();
            throw new UplinkdError('netlink', `NETLINK_NO_ENOBUFS is not set on the NETLINK_NETFILTER socket (${addonFailure() || 'the kernel has no SO_MEMINFO drop count'})`);
          }
          return sock;
        },
      },
    );
    return () => sub.close();
  };
}
