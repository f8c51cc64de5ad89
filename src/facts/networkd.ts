// systemd-networkd lease files: /run/systemd/netif/leases/<ifindex>. Through systemd 257
// they are KEY=VALUE lines (ADDRESS=, ROUTER= space-separated, LIFETIME= seconds, no
// timestamp, so expiry = file mtime + LIFETIME); newer systemd may write a JSON object
// (Address, Router[], Lifetime "1h 30min"); both are read.
import * as path from 'node:path';
import type { Lease } from '../model/facts';
import type { Ipv4 } from '../model/types';
import { UplinkdError } from '../errors';
import { firstIpv4, isIpv4 } from './ipv4';
import { parseKeyValues } from './keyvalue';

/** "1h 30min 5s" style time span (systemd FORMAT_TIMESPAN) or plain seconds, in seconds. */
function timespanSeconds(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const units: Record<string, number> = { d: 86400, day: 86400, days: 86400, h: 3600, min: 60, s: 1, ms: 0.001 };
  let total = 0;
  for (const part of text.trim().split(/\s+/)) {
    const m = /^(\d+)([a-z]+)$/.exec(part);
    if (!m || units[m[2]] === undefined) return undefined;
    total += Number(m[1]) * units[m[2]];
  }
  return total;
}

function jsonAddress(value: unknown): Ipv4 | undefined {
  if (typeof value === 'string' && isIpv4(value)) return value;
  if (Array.isArray(value) && value.length === 4 && value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    return value.join('.');
  }
  return undefined;
}

function fromJson(text: string): { address?: Ipv4; gateway?: Ipv4; lifetime?: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UplinkdError('io', 'malformed JSON lease', { cause: err });
  }
  if (typeof doc !== 'object' || doc === null) throw new UplinkdError('io', 'JSON lease is not an object');
  const o = doc as Record<string, unknown>;
  const routers = Array.isArray(o.Router) ? o.Router : [];
  return {
    address: jsonAddress(o.Address),
    gateway: routers.length > 0 ? jsonAddress(routers[0]) : undefined,
    lifetime: typeof o.Lifetime === 'string' || typeof o.Lifetime === 'number' ? timespanSeconds(String(o.Lifetime)) : undefined,
  };
}

function fromKeyValues(text: string): { address?: Ipv4; gateway?: Ipv4; lifetime?: number } {
  const kv = parseKeyValues(text);
  const address = kv.get('ADDRESS');
  const lifetime = kv.get('LIFETIME');
  return {
    address: address && isIpv4(address) ? address : undefined,
    gateway: firstIpv4(kv.get('ROUTER') ?? ''),
    lifetime: lifetime && /^\d+$/.test(lifetime) ? Number(lifetime) : undefined,
  };
}

/**
 * The lease in a networkd lease file. The file name is the interface index;
 * `interfaceNames` maps indexes to names in the namespace the file belongs to.
 * Throws UplinkdError('io') when the index is unknown or the content is malformed.
 */
export function parseNetworkdLease(
  text: string,
  file: string,
  interfaceNames: ReadonlyMap<number, string>,
  mtimeMs: number,
): Lease {
  const base = path.basename(file);
  if (!/^\d+$/.test(base)) throw new UplinkdError('io', 'networkd lease file name is not an interface index');
  const name = interfaceNames.get(Number(base));
  if (!name) throw new UplinkdError('io', `no interface with index ${base}`);
  const facts = text.trimStart().startsWith('{') ? fromJson(text) : fromKeyValues(text);
  const lease: Lease = { interface: name, client: 'networkd', file };
  if (facts.address) lease.address = facts.address;
  if (facts.gateway) lease.gateway = facts.gateway;
  if (facts.lifetime !== undefined) lease.expiresAt = mtimeMs + facts.lifetime * 1000;
  return lease;
}
