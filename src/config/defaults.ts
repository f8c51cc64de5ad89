import type { MonitorConfig } from './types';

export const DEFAULTS = {
  default: 'balance' as const,
  tableBase: 1000,
  rulePriority: 10000,
  protocol: 117,
  weight: 1,
  tier: 1,
  /**
   * With flow pinning, established connections bypass the balance group (their packets carry the
   * uplink's mark and match its fwmark rule), so buckets protect nothing: a bucket idle for 2 s
   * moves at once, and after 10 s out of balance every bucket may move (docs/pinning.md).
   */
  resilient: { buckets: 128, idleTimer: 2, unbalancedTimer: 10 },
  /** Without pinning, buckets are all that keeps NATed flows on their uplink: move only long-idle ones, never force. */
  resilientUnpinned: { idleTimer: 30, unbalancedTimer: 0 },
  /**
   * Bits 24-30: clear of Tailscale (0x00ff0000), kube-proxy (0x4000, 0x8000), Cilium's magic marks
   * (0x0f00), Istio, mwan3 (0x3f00), wg-quick (51820 = 0xca6c) and the small marks admins use;
   * inside Calico's mask (0xffff0000) and Cilium's identity bits (docs/pinning.md, Marks).
   */
  pinning: { enabled: true, markMask: 0x7f000000 },
  paths: {
    rtTables: '/etc/iproute2/rt_tables.d/uplinkd.conf',
    rtProtos: '/etc/iproute2/rt_protos.d/uplinkd.conf',
    leases: [
      '/var/lib/dhcp/dhclient*.leases',
      '/var/lib/dhclient/*.lease*',
      '/var/lib/dhcpcd/*.lease',
      '/run/systemd/netif/leases/*',
      '/run/udhcpc/*.lease',
    ],
    controlSocket: '/run/uplinkd/control.sock',
    hooksDir: '/etc/uplinkd/hooks.d',
  },
  daemon: { resyncMs: 30_000, debounceMs: 5 },
};

/**
 * Health probing defaults (docs/health.md has the arithmetic). Polite: one probe per target per
 * second in steady state. Fast where it matters: a probe unanswered within the RTO (at least
 * `timeout`) or packets leaving the interface with nothing coming back start a burst of probe
 * rounds 100 ms apart; `down_after` of them unanswered confirm it (about 0.7 s with traffic,
 * at most 1.5 s of silence + 1 s to the next round when idle). Up again: 3 good rounds among the last 5.
 */
export const MONITOR_DEFAULTS: Omit<MonitorConfig, 'targets'> = {
  method: 'icmp',
  intervalMs: 1000,
  timeoutMs: 250,
  quorum: 1,
  downAfter: 3,
  upAfter: 3,
  window: 60,
  degradedLossPct: 40,
  degradedRttMs: 250,
  onDegraded: 'keep',
};
