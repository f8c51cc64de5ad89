// Read-only views of a namespace's routing state for lab tests and the demo,
// and running the uplinkd CLI inside a namespace.
import * as path from 'node:path';
import { inNs, ipJson, type RunOptions, type RunResult } from './exec';

/** bin/uplinkd of this checkout (dist/lab -> repo root), not a fixed install path. */
export const UPLINKD_BIN = path.resolve(__dirname, '..', '..', 'bin', 'uplinkd');

/** Runs `uplinkd args` inside `ns`; never throws on a non-zero exit (tests look at the code). */
export function uplinkd(ns: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return inNs(ns, process.execPath, [UPLINKD_BIN, ...args], { timeoutMs: 30_000, ...opts, allowFail: true });
}

export interface RoutingState {
  rules: unknown[];
  routes: unknown[];
  nexthops: unknown[];
}

/** IPv4 rules, routes of every table and nexthops, numerically (`ip -j -N`), for before/after comparisons. */
export async function routingState(ns: string): Promise<RoutingState> {
  const [rules, routes, nexthops] = await Promise.all([
    ipJson(ns, ['-N', '-4', 'rule', 'show']),
    ipJson(ns, ['-N', '-4', 'route', 'show', 'table', 'all']),
    ipJson(ns, ['-N', '-4', 'nexthop', 'show']),
  ]);
  return { rules, routes, nexthops };
}

export interface RuleJson {
  priority: number;
  src?: string;
  srclen?: number;
  table?: string;
  protocol?: string;
}

export interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
  protocol?: string;
  nhid?: number;
}

/** The IPv4 rules of namespace `ns` as `ip -N -4 -j rule show` prints them (numeric names). */
export function rules(ns: string): Promise<RuleJson[]> {
  return ipJson<RuleJson>(ns, ['-N', '-4', 'rule', 'show']);
}

/** The IPv4 routes of table `table` in namespace `ns`, as `ip -N -4 -j route show table T` prints them. */
export function routesOfTable(ns: string, table: number | string): Promise<RouteJson[]> {
  return ipJson<RouteJson>(ns, ['-N', '-4', 'route', 'show', 'table', String(table)]);
}
