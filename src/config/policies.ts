// `policies:` (which traffic uses which uplinks) and each uplink's `nat:` (docs/policies.md).
// Errors name FILE:LINE:COL and the field; a policy that can never match is a warning.
import { isMap, isScalar, isSeq } from 'yaml';
import { isCidr, isIpv4, maskOf, parseCidr, parseIpv4 } from '../model/ipv4';
import { formatIpProto } from '../model/text';
import { MAX_RULE_PORT, type Cidr, type PortRange } from '../model/types';
import { describe, isEmpty, type Field, type Reader } from './reader';
import type { NatConfig, PolicyConfig, UplinkConfig } from './types';
import { readIfname, type UplinkDraft } from './uplinks';
import { quoted } from './values';

/** Policies that fit between the planner's first policy priority (+210, 3 apart: plan/policies.ts) and the balance rule (+300). */
export const MAX_POLICIES = 30;
/** from x to x port x source_port combinations one policy may expand to. */
export const MAX_RULES_PER_POLICY = 64;

export const POLICY_KEYS = ['name', 'from', 'to', 'iif', 'protocol', 'port', 'source_port', 'dscp', 'use', 'strict'];
/** Protocols by name (IANA numbers); ports are only meaningful for the ones the kernel reads ports of. */
const PROTOCOLS = new Map([['tcp', 6], ['udp', 17], ['sctp', 132], ['icmp', 1]]);
const PORT_PROTOCOLS = new Set([6, 17, 132]);

/** Reads `policies:` and every uplink's `nat:` into `config` (after the uplinks are read). */
export function readPolicies(r: Reader, policiesField: Field | undefined, drafts: UplinkDraft[], config: {
  uplinks: UplinkConfig[]; policies?: PolicyConfig[]; warnings?: string[];
}): void {
  drafts.forEach((d, i) => {
    const nat = d.fields.get('nat');
    const uplink = config.uplinks[i];
    if (nat && uplink) {
      const value = readNat(r, nat);
      if (value) uplink.nat = value;
    }
  });
  if (!policiesField || isEmpty(policiesField)) return;
  const items = r.seq(policiesField, 'policies (name, from/to/iif/protocol/port, use)');
  if (!items) return;
  if (items.length > MAX_POLICIES) {
    r.report(policiesField.at, policiesField.path,
      `${items.length} policies do not fit in uplinkd's priority band (expected at most ${MAX_POLICIES}; docs/policies.md)`);
    return;
  }
  const uplinkNames = new Set(drafts.map((d) => d.name).filter((n): n is string => n !== undefined));
  const names = new Map<string, Field>();
  const policies: { policy: PolicyConfig; field: Field }[] = [];
  for (const item of items) {
    const policy = readPolicy(r, item, uplinkNames, names);
    if (policy) policies.push({ policy, field: item });
  }
  const warnings: string[] = [];
  for (let j = 0; j < policies.length; j++) {
    const later = policies[j]!;
    const earlier = policies.slice(0, j).find((e) => covers(e.policy, later.policy));
    if (!earlier) continue;
    const loc = r.locate(later.field.at, later.field.path);
    const first = r.locate(earlier.field.at, earlier.field.path);
    warnings.push(`${loc.file}:${loc.line}:${loc.column}: ${later.field.path}: policy ${quoted(later.policy.name)} never matches: `
      + `every packet it selects is taken first by ${earlier.field.path} ${quoted(earlier.policy.name)} (line ${first.line}); `
      + 'move it up or narrow the earlier one');
  }
  config.policies = policies.map((p) => p.policy);
  if (warnings.length > 0) config.warnings = [...(config.warnings ?? []), ...warnings];
}

function readNat(r: Reader, f: Field): NatConfig | undefined {
  if (isMap(f.node)) {
    const fields = r.map(f, ['snat']);
    const snat = fields && r.required(f, fields, 'snat', 'the source address, e.g. 198.51.100.2');
    const address = snat && r.string(snat, 'an IPv4 address');
    if (snat && address !== undefined && !isIpv4(address)) {
      r.report(snat.at, snat.path, `${quoted(address)} is not an IPv4 address (expected e.g. 198.51.100.2)`);
      return undefined;
    }
    return address !== undefined && snat ? { kind: 'snat', address } : undefined;
  }
  if (isScalar(f.node) && f.node.value === 'masquerade') return { kind: 'masquerade' };
  r.report(f.at, f.path, `expected masquerade or {snat: ADDRESS}, got ${describe(f.node)}`);
  return undefined;
}

function readPolicy(r: Reader, f: Field, uplinks: Set<string>, names: Map<string, Field>): PolicyConfig | undefined {
  const fields = r.map(f, POLICY_KEYS);
  if (!fields) return undefined;
  const loc = r.locate(f.at, f.path);
  let ok = true;
  const bad = (): undefined => { ok = false; return undefined; };

  const nameField = r.required(f, fields, 'name', 'a name for status and metrics');
  let name = nameField && r.string(nameField, 'a name');
  if (nameField && name !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(name)) {
      r.report(nameField.at, nameField.path, `${quoted(name)} is not a policy name (expected up to 32 letters, digits, _ . or -)`);
      name = bad();
    } else if (names.has(name)) {
      const first = names.get(name)!;
      r.report(nameField.at, nameField.path, `policy name ${quoted(name)} is also used by ${first.path} (line ${r.locate(first.at, first.path).line}) (expected each name once)`);
      name = bad();
    } else {
      names.set(name, nameField);
    }
  }

  const nets = (key: string): Cidr[] => {
    const field = fields.get(key);
    if (!field) return [];
    const list = isSeq(field.node) ? r.seq(field, 'addresses or networks') ?? [] : [field];
    if (list.length === 0) r.report(field.at, field.path, 'the list is empty (expected an address or network; leave the key out for any)');
    const out: Cidr[] = [];
    for (const item of list) {
      const net = readNet(r, item);
      if (net === undefined) bad();
      else out.push(net);
    }
    return out;
  };
  const from = nets('from');
  const to = nets('to');

  const iifField = fields.get('iif');
  const iif = iifField && readIfname(r, iifField);
  if (iifField && iif === undefined) bad();

  const protoField = fields.get('protocol');
  let ipProto: number | undefined;
  if (protoField) {
    const v = isScalar(protoField.node) ? protoField.node.value : undefined;
    if (typeof v === 'string' && PROTOCOLS.has(v)) ipProto = PROTOCOLS.get(v);
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 255) ipProto = v;
    else {
      r.report(protoField.at, protoField.path, `expected tcp, udp, sctp, icmp or a protocol number 1..255, got ${JSON.stringify(v ?? null)}`);
      bad();
    }
  }

  const ports = (key: string, what: string): PortRange[] => {
    const field = fields.get(key);
    if (!field) return [];
    const list = isSeq(field.node) ? r.seq(field, `${what} ports or ranges`) ?? [] : [field];
    const out: PortRange[] = [];
    for (const item of list) {
      const range = readPortRange(r, item);
      if (range === undefined) bad();
      else out.push(range);
    }
    if (ipProto === undefined && !protoField) {
      r.report(field.at, field.path, `a ${what} port needs a protocol (add protocol: tcp, udp or sctp)`);
      bad();
    } else if (ipProto !== undefined && !PORT_PROTOCOLS.has(ipProto)) {
      r.report(field.at, field.path, `protocol ${protoField ? formatIpProto(ipProto) : ''} has no ports (expected protocol tcp, udp or sctp with a port)`);
      bad();
    }
    return out;
  };
  const dport = ports('port', 'destination');
  const sport = ports('source_port', 'source');

  const dscpField = fields.get('dscp');
  const dscp = dscpField && r.number(dscpField, 0, 63);
  if (dscpField && dscp === undefined) bad();

  const useField = r.required(f, fields, 'use', 'the uplinks to use, in order, e.g. [isp1, isp2]');
  const use: string[] = [];
  if (useField) {
    const list = isSeq(useField.node) ? r.seq(useField, 'uplink names') ?? [] : [useField];
    if (list.length === 0) {
      r.report(useField.at, useField.path, 'the list is empty (expected at least one uplink name)');
      bad();
    }
    for (const item of list) {
      const u = r.string(item, 'an uplink name');
      if (u === undefined) bad();
      else if (!uplinks.has(u)) {
        r.report(item.at, item.path, `unknown uplink ${quoted(u)} (expected one of: ${[...uplinks].join(', ')})`);
        bad();
      } else if (use.includes(u)) {
        r.report(item.at, item.path, `uplink ${quoted(u)} is listed twice (expected each uplink once)`);
        bad();
      } else use.push(u);
    }
  } else bad();

  const strictField = fields.get('strict');
  const strict = strictField ? r.bool(strictField) : false;
  if (strict === undefined) bad();

  const count = Math.max(1, from.length) * Math.max(1, to.length) * Math.max(1, dport.length) * Math.max(1, sport.length);
  if (ok && count > MAX_RULES_PER_POLICY) {
    r.report(f.at, f.path, `needs ${count} rules (from x to x port x source_port; expected at most ${MAX_RULES_PER_POLICY}): use wider networks or ranges`);
    bad();
  }
  if (!ok || name === undefined) return undefined;
  return {
    name, at: `${loc.file}:${loc.line}:${loc.column}`, from, to, dport, sport, use, strict: strict ?? false,
    ...(iif !== undefined && { iif }), ...(ipProto !== undefined && { ipProto }), ...(dscp !== undefined && { dscp }),
  };
}

/** An address (a /32) or a network whose host bits are zero, as `ip rule from/to` reads it. */
function readNet(r: Reader, f: Field): Cidr | undefined {
  const text = r.string(f, 'an address or network, e.g. 192.168.20.0/24');
  if (text === undefined) return undefined;
  if (isIpv4(text)) return `${text}/32`;
  if (!isCidr(text)) {
    r.report(f.at, f.path, `${quoted(text)} is not an address or network (expected e.g. 192.168.10.20 or 192.168.20.0/24)`);
    return undefined;
  }
  const { ip, prefixlen } = parseCidr(text);
  const net = (parseIpv4(ip) & maskOf(prefixlen)) >>> 0;
  if (net !== parseIpv4(ip)) {
    const fixed = [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join('.');
    r.report(f.at, f.path, `${quoted(text)} has host bits set (expected the network ${fixed}/${prefixlen}, or the address ${ip} alone)`);
    return undefined;
  }
  return text;
}

/**
 * A port or an inclusive range "START-END" as struct fib_rule_port_range holds it: the kernel refuses 0 and
 * an end of 65535 (fib_rule_port_range_valid() in include/net/fib_rules.h), so ports are 1..65534.
 */
function readPortRange(r: Reader, f: Field): PortRange | undefined {
  const raw = isScalar(f.node) ? f.node.value : undefined;
  const expected = `a port 1..${MAX_RULE_PORT} or a range START-END with START <= END (the kernel cannot match port 0 or 65535)`;
  let start: number | undefined;
  let end: number | undefined;
  if (typeof raw === 'number' && Number.isInteger(raw)) start = end = raw;
  else if (typeof raw === 'string') {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(raw);
    if (m) {
      start = Number(m[1]);
      end = m[2] === undefined ? start : Number(m[2]);
    }
  }
  if (start === undefined || end === undefined) {
    r.report(f.at, f.path, `expected ${expected}, got ${JSON.stringify(raw ?? null)}`);
    return undefined;
  }
  if (start < 1 || end > MAX_RULE_PORT || start > end) {
    r.report(f.at, f.path, `${String(raw)} is a range the kernel cannot express (expected ${expected})`);
    return undefined;
  }
  return { start, end };
}

// ---- shadowing: does every packet `b` selects also match the earlier `a`? ----

function netCovers(a: Cidr, b: Cidr): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  if (pa.prefixlen > pb.prefixlen) return false;
  const mask = maskOf(pa.prefixlen);
  return ((parseIpv4(pa.ip) & mask) >>> 0) === ((parseIpv4(pb.ip) & mask) >>> 0);
}

/** Each of b's items lies inside one of a's; an empty list means "any". */
function listCovers<T>(a: T[], b: T[], inside: (outer: T, inner: T) => boolean): boolean {
  if (a.length === 0) return true;
  if (b.length === 0) return false;
  return b.every((x) => a.some((y) => inside(y, x)));
}

const rangeCovers = (a: PortRange, b: PortRange): boolean => a.start <= b.start && b.end <= a.end;
const sameOrAny = <T>(a: T | undefined, b: T | undefined): boolean => a === undefined || a === b;

/** Whether the earlier policy `a` takes every packet the later policy `b` selects. */
export function covers(a: PolicyConfig, b: PolicyConfig): boolean {
  return listCovers(a.from, b.from, netCovers) && listCovers(a.to, b.to, netCovers)
    && sameOrAny(a.iif, b.iif) && sameOrAny(a.ipProto, b.ipProto) && sameOrAny(a.dscp, b.dscp)
    && listCovers(a.dport, b.dport, rangeCovers) && listCovers(a.sport, b.sport, rangeCovers);
}

/** `exec: {cgroup: NAME}`: a relative cgroup v2 path of plain names, e.g. `uplinkd` (docs/policies.md). */
export function readExec(r: Reader, f: Field, config: { exec?: { cgroup: string } }): void {
  const fields = r.map(f, ['cgroup']);
  const cg = fields && r.required(f, fields, 'cgroup', 'a cgroup v2 directory name, e.g. uplinkd');
  const name = cg && r.string(cg, 'a cgroup v2 directory name');
  if (!cg || name === undefined) return;
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(name) || name.split('/').some((p) => p === '.' || p === '..')) {
    r.report(cg.at, cg.path, `${quoted(name)} is not a relative cgroup path (expected names of letters, digits, _ . - separated by /)`);
    return;
  }
  config.exec = { cgroup: name };
}
