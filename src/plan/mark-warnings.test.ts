import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from './planner';
import { parseSnapshot } from '../model/text';
import { testConfig } from '../../test/support/test-config';
import { DEFAULTS } from '../config/defaults';

const config = (markMask?: number) => testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
  { name: 'isp2', interface: 'if2', address: '203.0.113.2/24', gateway: '203.0.113.1' },
], { pinning: { enabled: true, markMask: markMask ?? DEFAULTS.pinning.markMask } });

const KERNEL = `
link lo up lower_up
link if1 up lower_up
link if2 up lower_up
addr if1 198.51.100.2/24
addr if2 203.0.113.2/24
`;

test('plan warns about a foreign fwmark rule using bits inside the pinning mask, and says what to set', () => {
  const kernel = parseSnapshot(`${KERNEL}rule 900 fwmark 0x3000000/0x3000000 lookup 200 protocol 4\n`);
  const p = plan(config(), { kernel, leases: [], health: {} });
  const w = p.warnings.filter((x) => x.includes('mark mask'));
  assert.equal(w.length, 1, p.warnings.join('\n'));
  assert.match(w[0], /^ip rule 900: fwmark 0x3000000\/0x3000000 lookup 200 uses mark bits 0x3000000 .* mark mask 0x7f000000 in 0x03000000: set pinning.mark_mask to 0x/);
});

test('no warning for foreign rules outside the mask (Tailscale, wg-quick), for uplinkd\'s own rules, or with pinning off', () => {
  const kernel = parseSnapshot(`${KERNEL}rule 5210 fwmark 0x80000/0xff0000 lookup main protocol 4
rule 32000 not fwmark 0xca6c lookup 51820 protocol 4
rule 10050 fwmark 0x1000000/0x7f000000 lookup 1001 protocol 117
`);
  assert.deepEqual(plan(config(), { kernel, leases: [], health: {} }).warnings.filter((x) => x.includes('mark mask')), []);
  const off = testConfig(config().uplinks.map((u) => ({ name: u.name, interface: u.interface, address: `${u.address!.ip}/24`, gateway: u.gateway })), { pinning: { enabled: false, markMask: 0x00ff0000 } });
  const foreign = parseSnapshot(`${KERNEL}rule 900 fwmark 0x80000/0xff0000 lookup 200 protocol 4\n`);
  assert.deepEqual(plan(off, { kernel: foreign, leases: [], health: {} }).warnings.filter((x) => x.includes('mark mask')), []);
  // With the old default (Tailscale's region) the same Tailscale rule is reported.
  assert.equal(plan(config(0x00ff0000), { kernel: foreign, leases: [], health: {} }).warnings.filter((x) => x.includes('mark mask')).length, 1);
});
