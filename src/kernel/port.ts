import type { Change, KernelState } from '../model/types';

/** What changed in the kernel, as far as a subscriber needs to know to replan. */
export type KernelEventKind = 'link' | 'address' | 'route' | 'rule' | 'nexthop';

export interface KernelEvent {
  kind: KernelEventKind;
  action: 'new' | 'del';
  /** Human-readable summary for logs, e.g. "address 198.51.100.7/24 on if1". */
  summary: string;
  /** When the message was read (performance.now()). */
  at: number;
}

export interface KernelPort {
  /** Read links, addresses, routes (all tables), rules and nexthops (IPv4). */
  snapshot(): Promise<KernelState>;
  /**
   * Apply one change. Adding what exists (EEXIST) and deleting what is gone
   * (ENOENT/ESRCH) succeed silently; anything else rejects with UplinkdError.
   */
  apply(change: Change): Promise<void>;
  /**
   * Subscribe to kernel notifications. `onOverrun(reason)` is called when notifications were lost
   * or not understood (ENOBUFS, a truncated datagram, one that failed to decode): the caller must
   * resync from a snapshot.
   */
  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: (reason?: string) => void): () => void;
  close(): void;
}
