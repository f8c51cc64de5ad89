import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAUSE_CHARS, CAUSES_SHOWN, capCauses, changeSummary, joinCauses } from './log-volume';

test('a cause list is capped: the first few causes, each cut, then "and N more"', () => {
  const causes = Array.from({ length: 40 }, (_, i) => `route new/changed: 10.${i}.0.0/24 dev lan0 proto kernel scope link src 10.${i}.0.1 table main`);
  const capped = capCauses(causes);
  assert.equal(capped.length, CAUSES_SHOWN + 1);
  assert.equal(capped.at(-1), `and ${40 - CAUSES_SHOWN} more`);
  assert.deepEqual(capped.slice(0, CAUSES_SHOWN), causes.slice(0, CAUSES_SHOWN));
  assert.ok(joinCauses(causes).length < 400, joinCauses(causes));
  const long = 'x'.repeat(CAUSE_CHARS * 3);
  assert.equal(capCauses([long])[0]!.length, CAUSE_CHARS);
  assert.deepEqual(capCauses(['a', 'b']), ['a', 'b']);
});

test('a change summary counts per operation and kind, most first', () => {
  const changes = [
    ...Array.from({ length: 5 }, () => ({ op: 'add' as const, kind: 'route' as const })),
    { op: 'replace' as const, kind: 'nexthop' as const },
    { op: 'del' as const, kind: 'rule' as const },
  ];
  assert.equal(changeSummary(changes, ['install nft']), 'add route: 5, del rule: 1, install nft: 1, replace nexthop: 1');
});
