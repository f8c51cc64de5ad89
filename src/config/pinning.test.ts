import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { DEFAULTS } from './defaults';
import { parseConfig } from './load';
import { markMaskProblem, markShift } from './values';

const FILE = '/etc/uplinkd/uplinkd.yaml';
const UPLINKS = `uplinks:
  - {name: isp1, interface: if1, dhcp: true}
  - {name: isp2, interface: if2, dhcp: true}
  - {name: lte, interface: wwan0, dhcp: true}
`;

function problem(text: string): { field: string; message: string } {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof UplinkdError);
    return { field: e.detail.location?.field ?? '', message: e.message };
  }
  assert.fail('expected the configuration to be rejected');
}

test('pinning is on by default with mask 0x7f000000 and the pinned resilient timers', () => {
  const c = parseConfig(UPLINKS, FILE);
  assert.deepEqual(c.pinning, { enabled: true, markMask: 0x7f000000 });
  assert.deepEqual(c.resilient, { buckets: 128, idleTimer: 2, unbalancedTimer: 10 });
});

test('pinning disabled: the unpinned timers, unless the file sets them', () => {
  const off = parseConfig(`${UPLINKS}pinning: {enabled: false}\n`, FILE);
  assert.equal(off.pinning?.enabled, false);
  assert.deepEqual(off.resilient, { buckets: 128, ...DEFAULTS.resilientUnpinned });
  const set = parseConfig(`${UPLINKS}pinning: {enabled: false}\nresilient: {idle_timer: 5}\n`, FILE);
  assert.deepEqual(set.resilient, { buckets: 128, idleTimer: 5, unbalancedTimer: 0 });
});

test('mark_mask: hex in YAML, checked for one run of bits and room for every uplink', () => {
  assert.equal(parseConfig(`${UPLINKS}pinning: {mark_mask: 0xf000}\n`, FILE).pinning?.markMask, 0xf000);
  const notRun = problem(`${UPLINKS}pinning: {mark_mask: 0x00f0f000}\n`);
  assert.equal(notRun.field, 'pinning.mark_mask');
  assert.match(notRun.message, /0x00f0f000 is not one run of bits/);
  assert.equal(parseConfig(`${UPLINKS}pinning: {mark_mask: 0x3}\n`, FILE).pinning?.markMask, 3, '0x3 holds marks 1, 2, 3');
  const tooNarrow = problem(`${UPLINKS}pinning: {mark_mask: 0x100}\n`);
  assert.match(tooNarrow.message, /0x00000100 holds marks for 1 uplink, not 3/);
  assert.match(problem(`${UPLINKS}pinning: {mark_mask: 0}\n`).message, /out of range/);
  assert.match(problem(`${UPLINKS}pinning: {enable: true}\n`).message, /unknown key 'enable', did you mean 'enabled'/);
});

test('markShift and markMaskProblem at the edges of 32 bits', () => {
  assert.equal(markShift(0x80000000), 31);
  assert.equal(markShift(0x00ff0000), 16);
  assert.equal(markShift(1), 0);
  assert.equal(markMaskProblem(0xffffffff, 4), undefined);
  assert.equal(markMaskProblem(0xc0000000, 3), undefined);
  assert.match(markMaskProblem(0xc0000000, 4) ?? '', /holds marks for 3 uplinks, not 4/);
});
