import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { jsonRuleEffect, rulesEffectDigest, writtenRuleEffect, writtenRuleExpr } from './rule-effect';

// Rules of `table ip uplinkd` as uplinkd writes them and as nft 1.0.6 prints them back with `nft -j list` (captured):
// nft stores `x & a | b` as `x & (a|b) | b`, and prints a set of one member as that member.
const PIN_ARRIVING = 'iifname "if1" ct direction original meta mark & 0x80ffffff == 0x00000000 ct mark & 0x7f000000 == 0x00000000 ct mark set ct mark & 0x80ffffff | 0x01000000';
const PIN_ARRIVING_JSON = [
  { match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'if1' } },
  { match: { op: '==', left: { ct: { key: 'direction' } }, right: 'original' } },
  { match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 2164260863] }, right: 0 } },
  { match: { op: '==', left: { '&': [{ ct: { key: 'mark' } }, 2130706432] }, right: 0 } },
  { mangle: { key: { ct: { key: 'mark' } }, value: { '|': [{ '&': [{ ct: { key: 'mark' } }, 2181038079] }, 16777216] } } },
];
const ROUTE_PINNED = 'iifname != { "if1", "if2" } meta mark & 0x80ffffff == 0x00000000 ct mark & 0x7f000000 { 0x01000000, 0x02000000 } meta mark set ct mark & 0x7f000000';
const ROUTE_PINNED_JSON = [
  { match: { op: '!=', left: { meta: { key: 'iifname' } }, right: { set: ['if2', 'if1'] } } },
  { match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 2164260863] }, right: 0 } },
  { match: { op: '==', left: { '&': [{ ct: { key: 'mark' } }, 2130706432] }, right: { set: [16777216, 33554432] } } },
  { mangle: { key: { meta: { key: 'mark' } }, value: { '&': [{ ct: { key: 'mark' } }, 2130706432] } } },
];

test('a rule as written and as nft reads it back have one effect, though nft prints it otherwise', () => {
  assert.equal(writtenRuleEffect(PIN_ARRIVING), jsonRuleEffect(PIN_ARRIVING_JSON));
  assert.equal(writtenRuleEffect(ROUTE_PINNED), jsonRuleEffect(ROUTE_PINNED_JSON));
  // A set of one member is read back as the member.
  assert.equal(writtenRuleEffect('iifname != { "if1" } ct mark & 0x7f000000 { 0x01000000 }'),
    jsonRuleEffect([{ match: { op: '!=', left: { meta: { key: 'iifname' } }, right: 'if1' } }, { match: { op: '==', left: { '&': [{ ct: { key: 'mark' } }, 0x7f000000] }, right: 0x01000000 } }]));
  assert.equal(writtenRuleEffect('oifname "if1" masquerade'), jsonRuleEffect([{ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'if1' } }, { masquerade: null }]));
  assert.equal(writtenRuleEffect('oifname "if2" snat to 192.0.2.9'), jsonRuleEffect([{ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'if2' } }, { snat: { addr: '192.0.2.9' } }]));
  // What uplinkd writes, in nft's JSON terms, reads as itself (the test double of nft answers with it).
  assert.equal(jsonRuleEffect(writtenRuleExpr(PIN_ARRIVING)), writtenRuleEffect(PIN_ARRIVING));
});

test('what a rule does is told apart whatever its comment: another mark, another interface, another action, one more statement', () => {
  const base = jsonRuleEffect(PIN_ARRIVING_JSON);
  const edit = (f: (e: typeof PIN_ARRIVING_JSON) => unknown[]) => jsonRuleEffect(f(structuredClone(PIN_ARRIVING_JSON)));
  assert.notEqual(edit((e) => { (e[4]!.mangle!.value as { '|': unknown[] })['|'][1] = 0x05000000; return e; }), base);
  assert.notEqual(edit((e) => { e[0]!.match!.right = 'if2'; return e; }), base);
  assert.notEqual(edit((e) => e.slice(0, 4)), base);
  assert.notEqual(edit((e) => [...e, { counter: { packets: 0, bytes: 0 } }]), base);
  assert.match(jsonRuleEffect([{ counter: null }]), /^\?/, 'a statement not known here is kept as it is');
  assert.notEqual(writtenRuleEffect('ct mark set ct mark & 0x80ffffff | 0x01000000'), writtenRuleEffect('ct mark set ct mark & 0x80ffffff | 0x02000000'));
  // Equal functions are equal however they are written.
  assert.equal(writtenRuleEffect('ct mark set ct mark & 0x80ffffff | 0x01000000'), writtenRuleEffect('ct mark set ct mark & 0x81ffffff | 0x01000000'));
});

test('an uplinkd exec rule (socket cgroupv2) reads back as itself, though nft -j prints no level; another path does not', () => {
  // Captured from nft 1.0.6 `nft -j list table ip uplinkd`; a deleted cgroup is printed as its numeric id.
  const written = 'socket cgroupv2 level 2 "uplinkd-exec/isp1" meta mark set 0x01000000';
  const read = (right: unknown) => jsonRuleEffect([
    { match: { op: '==', left: { socket: { key: 'cgroupv2' } }, right } },
    { mangle: { key: { meta: { key: 'mark' } }, value: 16777216 } },
  ]);
  assert.equal(writtenRuleEffect(written), read('uplinkd-exec/isp1'));
  assert.notEqual(writtenRuleEffect(written), read('uplinkd-exec/isp2'));
  assert.notEqual(writtenRuleEffect(written), read('82'));
});

test('the digest follows chains and rule order within a chain, not the order of chains', () => {
  const a = { chain: 'prerouting', effect: 'a' };
  const b = { chain: 'prerouting', effect: 'b' };
  const o = { chain: 'output', effect: 'o' };
  assert.equal(rulesEffectDigest([a, b, o]), rulesEffectDigest([o, a, b]));
  assert.notEqual(rulesEffectDigest([a, b, o]), rulesEffectDigest([b, a, o]));
  assert.notEqual(rulesEffectDigest([a, b]), rulesEffectDigest([a, { ...b, chain: 'output' }]));
});

test('a rule uplinkd would not write is an error, not a silent mismatch', () => {
  assert.throws(() => writtenRuleEffect('ip saddr 10.0.0.1 drop'), (e: unknown) => e instanceof UplinkdError && /cannot read uplinkd's own nft rule at 'ip saddr/.test(e.message));
});
