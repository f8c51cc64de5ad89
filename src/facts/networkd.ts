// systemd-networkd lease files: /run/systemd/netif/leases/<ifindex>. Through systemd 257
// they are KEY=VALUE lines (ADDRESS=, ROUTER= space-separated, LIFETIME= seconds, no
// timestamp, so expiry = file mtime + LIFETIME); newer systemd may write a JSON object
// (Address, Router[], Lifetime "1h 30min"); both are read. Classless routes come from
// CLASSLESS_ROUTES= (option 121, "dst/len,gw dst/len,gw") and OPTION_249= (the raw option in
// hex, kept because 249 is in networkd's private-option range); networkd itself ignores 249.
import * as path from 'node:path';
import type { Lease } from '../model/facts';
import type { Ipv4 } from '../model/types';
import { UplinkdError } from '../errors';
import { firstIpv4, isIpv4 } from '../model/ipv4';
import { parseKeyValues } from './keyvalue';
import { applyRoutingOptions, decodeClasslessRoutes, parseClasslessText, type RoutingOptions } from './classless';

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

type NetworkdFacts = { address?: Ipv4; routing: RoutingOptions; lifetime?: number };

function fromJson(text: string): NetworkdFacts {
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
    routing: { router: routers.length > 0 ? jsonAddress(routers[0]) : undefined },
    lifetime: typeof o.Lifetime === 'string' || typeof o.Lifetime === 'number' ? timespanSeconds(String(o.Lifetime)) : undefined,
  };
}

function fromKeyValues(text: string): NetworkdFacts {
  const kv = parseKeyValues(text);
  const address = kv.get('ADDRESS');
  const lifetime = kv.get('LIFETIME');
  const routing: RoutingOptions = { router: firstIpv4(kv.get('ROUTER') ?? '') };
  const classless = kv.get('CLASSLESS_ROUTES');
  if (classless !== undefined) routing.classless = parseClasslessText(classless);
  const ms = kv.get('OPTION_249');
  if (ms !== undefined) {
    if (!/^([0-9a-f]{2})*$/i.test(ms)) throw new UplinkdError('io', `OPTION_249 "${ms}" is not hex`);
    routing.msClassless = decodeClasslessRoutes(Buffer.from(ms, 'hex'));
  }
  return {
    address: address && isIpv4(address) ? address : undefined,
    routing,
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
  applyRoutingOptions(lease, facts.routing);
  if (facts.lifetime !== undefined) lease.expiresAt = mtimeMs + facts.lifetime * 1000;
  return lease;
}
