import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { testConfig } from '../../test/support/test-config';
import type { Config } from '../config/types';
import { readPinning, type NftResult, type NftRunner } from './nft';
import { applyPinning, applyPinningChange, formatPinningChange, observedAfter, pinningIdentity, pinningInPlace, planPinning, teardownPinning } from './pinning';
import { renderPinning } from './ruleset';
import { rulesEffectDigest } from './rule-effect';

const on: Config = testConfig([{ name: 'isp1', interface: 'if1' }, { name: 'isp2', interface: 'if2' }], { pinning: { enabled: true, markMask: 0x00ff0000 } });
const off: Config = { ...on, pinning: { enabled: false, markMask: 0x00ff0000 } };

/** A fake nft: answers `list` with `listing` (or the failure given) and records every call. */
function fakeNft(listing: Partial<NftResult>): { run: NftRunner; calls: { args: string[]; input?: string }[] } {
  const calls: { args: string[]; input?: string }[] = [];
  const run: NftRunner = async (args, input) => {
    calls.push({ args, input });
    if (args.includes('list')) return { code: 0, stdout: '', stderr: '', ...listing };
    return { code: 0, stdout: '', stderr: '' };
  };
  return { run, calls };
}

/** The chain of `listingOf`, as nft 1.0.6 prints it, and its layout. */
const PREROUTING = { family: 'ip', table: 'uplinkd', name: 'prerouting', handle: 1, type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' };
const PREROUTING_LAYOUT = 'chain prerouting filter prerouting -150 accept';

function listingOf(hashes: (string | undefined)[], extra: object[] = []): string {
  const rules = hashes.map((h, i) => ({ rule: { family: 'ip', table: 'uplinkd', chain: 'prerouting', handle: i + 4, ...(h ? { comment: `isp1: pin arriving #${h}` } : {}), expr: [] } }));
  return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, { table: { family: 'ip', name: 'uplinkd', handle: 2 } }, { chain: PREROUTING }, ...extra, ...rules] });
}

/** The effect of `n` rules of listingOf (no statements). */
const emptyRules = (n: number): string => rulesEffectDigest(Array.from({ length: n }, () => ({ chain: 'prerouting', effect: '' })));

const ENOENT: NftResult = { code: null, stdout: '', stderr: '', error: Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' }) };
const ABSENT: Partial<NftResult> = { code: 1, stderr: 'Error: No such file or directory\nlist table ip uplinkd\n' };

test('readPinning: absent, missing nft, a table whose rules all carry one hash, and a tampered one', async () => {
  assert.deepEqual(await readPinning(fakeNft(ABSENT).run), { kind: 'absent' });
  const missing = await readPinning(async () => ENOENT);
  assert.equal(missing.kind, 'unavailable');
  assert.match(missing.kind === 'unavailable' ? missing.reason : '', /nft is not installed/);
  const h = 'a'.repeat(16);
  assert.deepEqual(await readPinning(fakeNft({ stdout: listingOf([h, h, h]) }).run), { kind: 'present', hash: h, rules: 3, effect: emptyRules(3), layout: PREROUTING_LAYOUT });
  assert.deepEqual(await readPinning(fakeNft({ stdout: listingOf([h, undefined]) }).run), { kind: 'present', rules: 2, effect: emptyRules(2), layout: PREROUTING_LAYOUT });
  // A chain's policy changed, a chain and a set added: all in the layout.
  const tampered = listingOf([h], [{ chain: { ...PREROUTING, policy: 'drop' } }, { chain: { family: 'ip', table: 'uplinkd', name: 'extra', handle: 9 } }, { set: { family: 'ip', table: 'uplinkd', name: 's', type: 'ipv4_addr' } }]);
  assert.deepEqual(await readPinning(fakeNft({ stdout: tampered }).run), {
    kind: 'present', hash: h, rules: 1, effect: emptyRules(1), layout: 'chain extra - - - -; chain prerouting filter prerouting -150 accept; chain prerouting filter prerouting -150 drop; set s',
  });
  // `flags dormant` on the table (nft 1.0.6 prints it as "t"): every chain off, the rules intact; the layout says so.
  const dormant = JSON.parse(listingOf([h])) as { nftables: Record<string, Record<string, unknown>>[] };
  dormant.nftables[1]!.table!.flags = 't';
  const read = await readPinning(fakeNft({ stdout: JSON.stringify(dormant) }).run);
  assert.equal(read.kind === 'present' && read.layout, `${PREROUTING_LAYOUT}; table flags "t"`);
  const { run, calls } = fakeNft(ABSENT);
  await readPinning(run);
  assert.deepEqual(calls[0].args, ['-j', 'list', 'table', 'ip', 'uplinkd']);
});

test('planPinning: install when absent or different, nothing when in place, delete when disabled', () => {
  const want = renderPinning(on)!;
  const absent = planPinning(on, { kind: 'absent' });
  assert.equal(absent.change?.op, 'install');
  assert.match(absent.status, /not in place/);
  const stale = planPinning(on, { kind: 'present', hash: '0'.repeat(16), rules: want.rules, effect: want.effect, layout: want.layout });
  assert.equal(stale.change?.op, 'install');
  assert.match(stale.status, /differs/);
  const short = planPinning(on, { kind: 'present', hash: want.hash, rules: want.rules - 1, effect: want.effect, layout: want.layout });
  assert.equal(short.change?.op, 'install', 'a deleted rule is noticed');
  assert.equal(want.layout, 'chain output route output -150 accept; chain postrouting filter postrouting -150 accept; chain prerouting filter prerouting -150 accept');
  const dropping = planPinning(on, { kind: 'present', hash: want.hash, rules: want.rules, effect: want.effect, layout: want.layout.replace('output -150 accept', 'output -150 drop') });
  assert.equal(dropping.change?.op, 'install', "a chain's policy changed is noticed");
  assert.match(dropping.status, /differs/);
  const edited = planPinning(on, { kind: 'present', hash: want.hash, rules: want.rules, effect: '0'.repeat(16), layout: want.layout });
  assert.equal(edited.change?.op, 'install', 'a rule that does something else under its comment is noticed');
  assert.match(edited.status, /differs/);
  const inPlace = planPinning(on, { kind: 'present', hash: want.hash, rules: want.rules, effect: want.effect, layout: want.layout });
  assert.equal(inPlace.change, undefined);
  assert.match(inPlace.status, /in place \(table ip uplinkd; isp1=0x00010000 isp2=0x00020000, mask 0x00ff0000\)/);
  assert.equal(planPinning(off, { kind: 'present', rules: 8, effect: '', layout: '' }).change?.op, 'delete');
  assert.equal(planPinning(off, { kind: 'absent' }).change, undefined);
  assert.equal(planPinning(off, { kind: 'unavailable', reason: 'x' }).warning, undefined);
});

test('nft missing: a clear warning, no change, pinning off', () => {
  const p = planPinning(on, { kind: 'unavailable', reason: 'nft is not installed (Debian package nftables)' });
  assert.equal(p.change, undefined);
  assert.match(p.warning ?? '', /flow pinning is off: nft is not installed/);
  assert.match(p.status, /^flow pinning: off/);
});

test('applyPinning runs one nft -f - with the whole script; failures are UplinkdError', async () => {
  const { run, calls } = fakeNft(ABSENT);
  const plan = planPinning(on, { kind: 'absent' });
  assert.equal((await applyPinning(plan, run))?.op, 'install');
  assert.deepEqual(calls.map((c) => c.args), [['-f', '-']]);
  assert.equal(calls[0].input, renderPinning(on)!.script);
  assert.equal(await applyPinning(planPinning(on, { kind: 'present', hash: renderPinning(on)!.hash, rules: renderPinning(on)!.rules, effect: renderPinning(on)!.effect, layout: renderPinning(on)!.layout }), run), undefined);
  assert.equal(calls.length, 1, 'nothing run when in place');
  const refused: NftRunner = async () => ({ code: 1, stdout: '', stderr: 'Error: Could not process rule: No such file or directory' });
  await assert.rejects(applyPinning(plan, refused), (e: unknown) => e instanceof UplinkdError && e.code === 'kernel' && /Could not process rule/.test(e.message));
});

test('teardownPinning deletes only when the table is there, and only our table', async () => {
  assert.equal(teardownPinning({ kind: 'absent' }), undefined);
  assert.equal(teardownPinning({ kind: 'unavailable', reason: 'nft is not installed' }), undefined);
  const change = teardownPinning({ kind: 'present', rules: 1, hash: 'b'.repeat(16), effect: '', layout: '' });
  assert.deepEqual(change, { op: 'delete' });
  const { run, calls } = fakeNft(ABSENT);
  await applyPinningChange(change!, run);
  assert.deepEqual(calls, [{ args: ['-f', '-'], input: 'table ip uplinkd\ndelete table ip uplinkd\n' }]);
});

test('observedAfter: an install reads back as the table in place, a delete as absent', () => {
  const plan = planPinning(on, { kind: 'absent' });
  const after = observedAfter(plan.change!);
  const again = planPinning(on, after);
  assert.equal(again.change, undefined);
  assert.equal(pinningInPlace(again), true);
  assert.equal(pinningInPlace(plan), false);
  assert.deepEqual(observedAfter({ op: 'delete' }), { kind: 'absent' });
  assert.equal(pinningInPlace(planPinning(off, { kind: 'absent' })), undefined);
  const otherMask: Config = { ...on, pinning: { enabled: true, markMask: 0x7f000000 } };
  assert.equal(pinningIdentity(renderPinning(on)!), pinningIdentity(renderPinning(on)!));
  assert.notEqual(pinningIdentity(renderPinning(on)!), pinningIdentity(renderPinning(otherMask)!), 'another table is another identity');
});

test('plan lines: one line by default, the runnable script with full', () => {
  const change = planPinning(on, { kind: 'absent' }).change!;
  const line = formatPinningChange(change);
  assert.doesNotMatch(line, /\n/);
  assert.match(line, /^nft -f - <<< 'table ip uplinkd \{ \.\.\. \}' \(6 rules: .*isp1 \(if1\) to mark 0x00010000\/0x00ff0000/);
  assert.equal(formatPinningChange(change, true), `nft -f - <<'EOF'\n${renderPinning(on)!.script}EOF`);
  assert.equal(formatPinningChange({ op: 'delete' }), 'nft delete table ip uplinkd');
});
