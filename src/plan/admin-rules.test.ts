import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load';
import { ISSUE_POLICIES } from '../../test/support/test-policies';
import { plan } from './planner';
import { parseSnapshot } from '../model/text';
import type { Rule } from '../model/types';

const WORLD = `link lo up lower_up
link if0 up lower_up
link if1 up lower_up
link if2 up lower_up
addr if0 192.168.10.1/24
addr if1 198.51.100.2/24
addr if2 192.0.2.7/24 dynamic
route table main default via 192.0.2.1 dev if2 proto dhcp metric 20
rule 0 from all lookup local
rule 32766 from all lookup main
rule 32767 from all lookup default
`;

const messages = (rules: string): string[] =>
  plan(parseConfig(ISSUE_POLICIES, 't.yaml'), { kernel: parseSnapshot(WORLD + rules), leases: [], health: {} }).warnings;

test("the kernel's own rules get no message; an admin rule at any priority says what it does", () => {
  assert.deepEqual(messages(''), []);
  assert.deepEqual(messages('rule 9000 from 192.168.20.0/24 lookup 1002 protocol static\n'), [
    "admin rule 'from 192.168.20.0/24 lookup 1002 priority 9000 protocol static': comes before flow pinning and split access, "
      + 'so port-forward replies and established connections it matches leave by table 1002, not through the uplink they came in on; '
      + 'shadows policy office: they never see the packets it matches for destinations table 1002 has a route to',
  ]);
  assert.deepEqual(messages('rule 10205 from 192.168.20.0/24 ipproto tcp dport 443 lookup 1001\n'), [
    "admin rule 'from 192.168.20.0/24 ipproto tcp dport 443 lookup 1001 priority 10205 protocol unspec': port-forward replies and "
      + "established connections are routed by uplinkd's earlier rules first, so it does not change them; precedes policy office "
      + '(priority 10210) and later uplinkd rules for the packets it matches',
  ]);
  assert.match(messages('rule 20000 to 203.0.113.0/24 lookup 1002\n')[0]!, /comes after all of uplinkd's rules: it only sees traffic no uplink took$/);
  assert.match(messages('rule 10212 from 192.168.10.20 ipproto udp unreachable\n')[0]!, /shadows policy voip:/);
});

test('a `not` rule is judged on the packets its selectors do not match (wg-quick: not fwmark 51820 lookup 51820)', () => {
  const [m] = messages('rule 10049 not from all fwmark 0xca6c lookup 51820\n');
  // Every pinned packet lacks mark 0xca6c: the rule takes them all, before flow pinning.
  assert.match(m!, /a `not` rule: it matches every packet its selectors do not/);
  assert.match(m!, /comes before flow pinning and split access, so port-forward replies and established connections it matches leave by table 51820/);
  assert.match(m!, /shadows pinning \(fwmark 0x[0-9a-f]+\)/);
  assert.doesNotMatch(m!, /matches none of their packets/);
  // With a default route in its table it takes them all for certain: a collision, so status is not "in sync".
  const withDefault = plan(parseConfig(ISSUE_POLICIES, 't.yaml'), {
    kernel: parseSnapshot(`${WORLD}link wg0 up lower_up\nroute table 51820 default dev wg0\nrule 10049 not from all fwmark 0xca6c lookup 51820\n`),
    leases: [], health: {},
  });
  assert.ok(withDefault.collisions.some((c) => /foreign rule 'not from all fwmark 0xca6c .*takes its packets/.test(c.text)), JSON.stringify(withDefault.collisions));
  // `not` of a selector that holds every pinned packet matches none of them, but still split access's.
  const [n] = messages('rule 10049 not from all fwmark 0x0/0x0 lookup 51820\n');
  assert.match(n!, /matches none of their packets/);
});

test('a selector uplinkd does not model (uidrange, l3mdev, goto) counts as possibly matching, and the message says so', () => {
  const snapshot = parseSnapshot(WORLD);
  snapshot.rules.push({ priority: 10049, action: 'lookup', table: 51820, protocol: 0, fwmark: 0xca6c, fwmask: 0xffffffff, unmodelled: ['uidrange=e803000000e80300'] });
  snapshot.rules.push({ priority: 10048, action: 'lookup', table: 0, protocol: 0, l3mdev: true });
  const out = plan(parseConfig(ISSUE_POLICIES, 't.yaml'), { kernel: snapshot, leases: [], health: {} }).warnings;
  const uid = out.find((w) => w.includes('uidrange'))!;
  assert.match(uid, /its selectors uidrange are not modelled by uplinkd, so it may match port-forward replies/);
  const vrf = out.find((w) => w.includes('l3mdev'))!;
  assert.match(vrf, /its selectors l3mdev are not modelled by uplinkd/);
});

test('suppress_prefixlength says what it lets through (wg-quick: lookup main suppress_prefixlength 0)', () => {
  const [m] = messages('rule 10048 from all lookup main suppress_prefixlength 0\n');
  assert.match(m!, /leave by table 254 when that table's route for them is longer than \/0 \(suppress_prefixlength 0 lets the others through\)/);
  assert.match(m!, /precedes pinning/);
});

test('every foreign rule of a matrix (selectors x actions x suppress x invert x priority) gets a message with text', () => {
  const selectors = ['from all', 'from 192.168.10.0/24', 'from 198.51.100.2', 'from all to 203.0.113.0/24', 'from all iif if0',
    'from all oif if1', 'from all fwmark 0x1', 'from all fwmark 0x0/0x0', 'from 192.168.10.20 ipproto udp dport 5060',
    'from all tos 0x10', 'from all dscp 10', 'from all ipproto tcp sport 1-1024'];
  const actions = ['lookup 51820', 'lookup main', 'blackhole', 'unreachable', 'prohibit'];
  const tails = ['', ' suppress_prefixlength 0', ' suppress_prefixlength 24'];
  const config = parseConfig(ISSUE_POLICIES, 't.yaml');
  let seen = 0;
  for (const priority of [100, 10049, 10150, 10500, 20000]) {
    for (const not of ['', 'not ']) {
      for (const sel of selectors) {
        for (const action of actions) {
          for (const tail of action.startsWith('lookup') ? tails : ['']) {
            const snapshot = parseSnapshot(`${WORLD}rule ${priority} ${not}${sel} ${action}${tail}\n`);
            const extra: Rule[] = [
              { priority: priority + 1, action: 'other', table: 0, protocol: 0, unmodelled: ['goto=10000000'] },
              { priority: priority + 2, action: 'lookup', table: 7, protocol: 0, unmodelled: ['suppress_ifgroup=01000000'] },
            ];
            snapshot.rules.push(...extra);
            for (const w of plan(config, { kernel: snapshot, leases: [], health: {} }).warnings.filter((x) => x.startsWith('admin rule'))) {
              seen++;
              assert.match(w, /^admin rule '[^']+': \S/, w);
              assert.doesNotMatch(w, /(:|;) *$|; ;/, w);
            }
          }
        }
      }
    }
  }
  assert.ok(seen >= 5 * 2 * 12 * (3 * 2 + 3) * 3, `only ${seen} messages`);
});
