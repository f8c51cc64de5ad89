// Runs inside the benchmark router namespace next to `uplinkd run`. Plays a DHCP client
// renumbering one interface (delete the old default route and address, add the new address
// with a lease lifetime and the new default route in main, over rtnetlink), and timestamps,
// on its own rtnetlink subscription, the kernel's RTM_NEWADDR and the moments the objects
// uplinkd must make for the new address appear. Prints one JSON line.
import { performance } from 'node:perf_hooks';
import { UplinkdError } from '../../src/errors';
import type { Address, Nexthop, Route, Rule } from '../../src/model/types';
import * as C from '../../src/netlink/constants';
import { decodeAddress, decodeLink, encodeLinkDumpRequest } from '../../src/netlink/link';
import { ifNamesFrom } from '../../src/netlink/names';
import { decodeNexthop } from '../../src/netlink/nexthop';
import { decodeRoute, encodeRoute } from '../../src/netlink/route';
import { decodeRule, encodeRuleDumpRequest } from '../../src/netlink/rule';
import { NetlinkClient, subscribe } from '../../src/netlink/socket';
import { attr, ipv4Attr } from '../../src/netlink/wire';

export interface RenumberArgs {
  iface: string;
  /** The uplink's table (also its nexthop id). */
  table: number;
  /** Priority of the `from <address>/32` rules. */
  rulePriority: number;
  warmup: number;
  iterations: number;
  /** Quiet time after each convergence, so every renumbering meets an idle daemon. */
  gapMs: number;
  timeoutMs: number;
}

/** ms after the RTM_NEWADDR notification. */
export interface RenumberSample {
  rule: number;
  connected: number;
  defaultRoute: number;
  nexthop: number;
  oldRuleGone: number;
}

export interface RenumberResult {
  samples: RenumberSample[];
  timeouts: number;
  overruns: number;
  finalRules: string[];
}

interface Lease {
  ip: string;
  len: number;
  net: string;
  gw: string;
}

/** Renumbering i moves between four /24s, so address, network and gateway all change. */
function leaseFor(i: number): Lease {
  const k = i % 4;
  const host = 10 + (Math.floor(i / 4) % 200);
  return { ip: `10.20.${k}.${host}`, len: 24, net: `10.20.${k}.0/24`, gw: `10.20.${k}.1` };
}

const IFA_CACHEINFO = 6;

/** ifaddrmsg + IFA_LOCAL/IFA_ADDRESS (+ a one-hour lifetime, as DHCP clients set it). */
function encodeAddress(index: number, l: Lease, withLifetime: boolean): Buffer {
  const h = Buffer.alloc(C.IFADDRMSG_LEN);
  h.writeUInt8(C.AF_INET, 0);
  h.writeUInt8(l.len, 1);
  h.writeUInt32LE(index, 4);
  const parts = [h, ipv4Attr(C.IFA_LOCAL, l.ip), ipv4Attr(C.IFA_ADDRESS, l.ip)];
  if (withLifetime) {
    const ci = Buffer.alloc(16);
    ci.writeUInt32LE(3600, 0); // preferred
    ci.writeUInt32LE(3600, 4); // valid
    parts.push(attr(IFA_CACHEINFO, ci));
  }
  return Buffer.concat(parts);
}

type Seen =
  | { type: typeof C.RTM_NEWADDR; a: Address }
  | { type: typeof C.RTM_NEWROUTE; r: Route }
  | { type: typeof C.RTM_NEWRULE | typeof C.RTM_DELRULE; rule: Rule }
  | { type: typeof C.RTM_NEWNEXTHOP; nh: Nexthop };

async function main(args: RenumberArgs): Promise<RenumberResult> {
  const client = new NetlinkClient();
  const links = (await client.dump(C.RTM_GETLINK, encodeLinkDumpRequest()))
    .filter((m) => m.type === C.RTM_NEWLINK).map((m) => decodeLink(m.payload));
  const names = ifNamesFrom(links);
  const index = links.find((l) => l.name === args.iface)?.index;
  if (index === undefined) throw new UplinkdError('lab', `no interface ${args.iface}`);

  let watcher: ((s: Seen, at: number) => void) | undefined;
  let overruns = 0;
  const sub = subscribe([C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_IPV4_ROUTE, C.RTNLGRP_IPV4_RULE, C.RTNLGRP_NEXTHOP], (msgs) => {
    const at = performance.now();
    if (!watcher) return;
    for (const m of msgs) {
      let s: Seen | undefined;
      if (m.type === C.RTM_NEWADDR) {
        const a = decodeAddress(m.payload, names);
        s = a && { type: m.type, a };
      } else if (m.type === C.RTM_NEWROUTE) {
        const r = decodeRoute(m.payload, names);
        s = r && { type: m.type, r };
      } else if (m.type === C.RTM_NEWRULE || m.type === C.RTM_DELRULE) {
        const rule = decodeRule(m.payload);
        s = rule && { type: m.type, rule };
      } else if (m.type === C.RTM_NEWNEXTHOP) {
        const nh = decodeNexthop(m.payload, names);
        s = nh && { type: m.type, nh };
      }
      if (s) watcher(s, at);
    }
  }, () => overruns++, (e) => process.stderr.write(`${e.message}\n`));

  const route = (gw: string): Route => ({ table: C.RT_TABLE_MAIN, dst: '0.0.0.0/0', type: 'unicast', protocol: 16, scope: 'universe', gateway: gw, dev: args.iface });
  const tolerate = (...codes: string[]) => (e: unknown) => {
    if (!(e instanceof UplinkdError && codes.includes(String(e.detail.errno)))) throw e;
    return [];
  };

  const samples: RenumberSample[] = [];
  let timeouts = 0;
  let prev: Lease | undefined;
  for (let i = 0; i < args.warmup + args.iterations; i++) {
    const next = leaseFor(i);
    const old = prev;
    const t: Partial<Record<keyof RenumberSample | 'newaddr', number>> = {};
    const converged = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), args.timeoutMs);
      watcher = (s, at) => {
        if (s.type === C.RTM_NEWADDR && s.a.dev === args.iface && s.a.address === next.ip) t.newaddr ??= at;
        else if (s.type === C.RTM_NEWRULE && s.rule.table === args.table && s.rule.priority === args.rulePriority && s.rule.src === `${next.ip}/32`) t.rule ??= at;
        else if (s.type === C.RTM_DELRULE && old && s.rule.table === args.table && s.rule.src === `${old.ip}/32`) t.oldRuleGone ??= at;
        else if (s.type === C.RTM_NEWROUTE && s.r.table === args.table && s.r.dst === next.net && s.r.src === next.ip) t.connected ??= at;
        else if (s.type === C.RTM_NEWROUTE && s.r.table === args.table && s.r.dst === '0.0.0.0/0' && s.r.gateway === next.gw) t.defaultRoute ??= at;
        else if (s.type === C.RTM_NEWNEXTHOP && s.nh.id === args.table && s.nh.gateway === next.gw) t.nexthop ??= at;
        if (t.newaddr !== undefined && t.rule !== undefined && t.connected !== undefined && t.defaultRoute !== undefined
          && t.nexthop !== undefined && (old === undefined || t.oldRuleGone !== undefined)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
    });
    // What a DHCP client does when its lease changes address.
    if (old) {
      await client.request(C.RTM_DELROUTE, 0, encodeRoute(route(old.gw), names, true)).catch(tolerate('ESRCH', 'ENOENT'));
      await client.request(C.RTM_DELADDR, 0, encodeAddress(index, old, false)).catch(tolerate('EADDRNOTAVAIL'));
    }
    await client.request(C.RTM_NEWADDR, C.NLM_F_CREATE | C.NLM_F_EXCL, encodeAddress(index, next, true));
    await client.request(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_EXCL, encodeRoute(route(next.gw), names));
    const ok = await converged;
    watcher = undefined;
    prev = next;
    if (!ok) {
      timeouts++;
      process.stderr.write(`renumbering ${i} to ${next.ip}: not converged after ${args.timeoutMs} ms: ${JSON.stringify(t)}\n`);
    } else if (i >= args.warmup) {
      const from = t.newaddr!;
      samples.push({
        rule: t.rule! - from,
        connected: t.connected! - from,
        defaultRoute: t.defaultRoute! - from,
        nexthop: t.nexthop! - from,
        oldRuleGone: old ? t.oldRuleGone! - from : 0,
      });
    }
    await new Promise((r) => setTimeout(r, args.gapMs));
  }
  const finalRules = (await client.dump(C.RTM_GETRULE, encodeRuleDumpRequest()))
    .filter((m) => m.type === C.RTM_NEWRULE).map((m) => decodeRule(m.payload))
    .filter((r): r is Rule => r !== undefined && r.table === args.table && r.src !== undefined)
    .map((r) => `from ${r.src} lookup ${r.table} priority ${r.priority}`);
  sub.close();
  client.close();
  return { samples, timeouts, overruns, finalRules };
}

main(JSON.parse(process.argv[2] ?? '{}') as RenumberArgs).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`renumber probe: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
