// Comparing the daemon's incremental kernel view with fresh dumps of the same namespace
// (test/lab/kernel-view.test.ts, test/lab/foreign-churn.test.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { routeOfInterest, type RouteInterest } from '../../src/kernel/port';
import type { KernelState } from '../../src/model/types';
import type { NetnsKernelPort } from './netns-port';

/** Each kind as sorted JSON lines, routes restricted to those of `interest`: what the view and a dump must agree on. */
export function comparable(s: KernelState, interest: RouteInterest): Record<string, string[]> {
  const lines = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();
  const nexthops = new Map(s.nexthops.map((n) => [n.id, n]));
  return {
    links: lines(s.links), addresses: lines(s.addresses), routes: lines(s.routes.filter((r) => routeOfInterest(r, interest, nexthops))),
    rules: lines(s.rules), nexthops: lines(s.nexthops),
  };
}

/**
 * The view (`cached`) and a fresh dump, taken between two equal fresh dumps: the kernel finishes some changes
 * later on its own (linkwatch sets carrier up to a second after a veth's peer comes up). Tries for about 2 s.
 */
export async function settledComparison(fresh: NetnsKernelPort, cached: NetnsKernelPort, interest: RouteInterest): Promise<{ dump: Record<string, string[]>; view: Record<string, string[]> }> {
  let dump = comparable(await fresh.snapshot(), interest);
  let view = comparable(await cached.snapshot(interest), interest);
  for (let tries = 0; tries < 20; tries++) {
    const again = comparable(await fresh.snapshot(), interest);
    if (isDeepStrictEqual(again, dump)) break;
    await sleep(100);
    dump = comparable(await fresh.snapshot(), interest);
    view = comparable(await cached.snapshot(interest), interest);
  }
  return { dump, view };
}
