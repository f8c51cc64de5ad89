import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { parseConfig } from './load';
import { ISSUE_POLICIES } from '../../test/support/test-policies';

const FILE = '/etc/uplinkd/uplinkd.yaml';


const HEAD = `uplinks:
  - name: isp1
    interface: if1
    address: 198.51.100.2/24
    gateway: 198.51.100.1
  - name: isp2
    interface: if2
    dhcp: true
policies:
`;

/** The "FILE:LINE:COL: FIELD: message" lines of a config error. */
function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof UplinkdError && e.code === 'config', String(e));
    return e.message.split('\n');
  }
  assert.fail('expected a configuration error');
}

test("the issue's file is accepted as written", () => {
  const c = parseConfig(ISSUE_POLICIES, FILE);
  assert.deepEqual(c.uplinks.map((u) => u.nat), [{ kind: 'masquerade' }, { kind: 'masquerade' }]);
  assert.deepEqual(c.policies, [
    { name: 'office', at: `${FILE}:13:5`, from: ['192.168.20.0/24'], to: [], dport: [], sport: [], use: ['isp2', 'isp1'], strict: false },
    { name: 'voip', at: `${FILE}:16:5`, from: ['192.168.10.20/32'], to: [], dport: [{ start: 5060, end: 5080 }], sport: [],
      use: ['isp1'], strict: true, ipProto: 17 },
    { name: 'bank', at: `${FILE}:22:5`, from: [], to: ['203.0.113.0/24'], dport: [], sport: [], use: ['isp1', 'isp2'], strict: false },
  ]);
  assert.equal(c.warnings, undefined);
});

test('further keys: lists, source ports, iif, dscp, snat, a single uplink name', () => {
  const c = parseConfig(`${HEAD}  - name: web
    from: [10.1.0.0/16, 10.2.0.5]
    iif: if0
    protocol: tcp
    port: [80, 443, "8000-8080"]
    source_port: 1024-65534
    dscp: 46
    use: isp2
`.replace('    dhcp: true\n', '    dhcp: true\n    nat: {snat: 192.0.2.7}\n'), FILE);
  assert.deepEqual(c.uplinks[1]!.nat, { kind: 'snat', address: '192.0.2.7' });
  const p = c.policies![0]!;
  assert.deepEqual([p.from, p.iif, p.ipProto, p.dscp, p.use], [['10.1.0.0/16', '10.2.0.5/32'], 'if0', 6, 46, ['isp2']]);
  assert.deepEqual(p.dport, [{ start: 80, end: 80 }, { start: 443, end: 443 }, { start: 8000, end: 8080 }]);
  assert.deepEqual(p.sport, [{ start: 1024, end: 65534 }]);
});

test('errors name file, line, column and field: unknown uplink, port without protocol, ranges the kernel cannot express', () => {
  assert.deepEqual(problems(`${HEAD}  - name: a
    use: [isp1, isp3]
  - name: b
    port: 5060
    use: [isp1]
  - name: c
    protocol: icmp
    port: 80
    use: [isp1]
  - name: d
    protocol: udp
    port: 5080-5060
    use: [isp1]
  - name: e
    protocol: tcp
    port: 0
    source_port: 1024-65535
    use: [isp1]
  - name: f
    from: 192.168.20.1/24
    use: []
  - name: a
    protocol: gre
    use: isp1
    strict: maybe
`), [
    `${FILE}:11:17: policies[0].use[1]: unknown uplink 'isp3' (expected one of: isp1, isp2)`,
    `${FILE}:13:11: policies[1].port: a destination port needs a protocol (add protocol: tcp, udp or sctp)`,
    `${FILE}:17:11: policies[2].port: protocol icmp has no ports (expected protocol tcp, udp or sctp with a port)`,
    `${FILE}:21:11: policies[3].port: 5080-5060 is a range the kernel cannot express (expected a port 1..65534 or a range START-END with START <= END (the kernel cannot match port 0 or 65535))`,
    `${FILE}:25:11: policies[4].port: 0 is a range the kernel cannot express (expected a port 1..65534 or a range START-END with START <= END (the kernel cannot match port 0 or 65535))`,
    `${FILE}:26:18: policies[4].source_port: 1024-65535 is a range the kernel cannot express (expected a port 1..65534 or a range START-END with START <= END (the kernel cannot match port 0 or 65535))`,
    `${FILE}:29:11: policies[5].from: '192.168.20.1/24' has host bits set (expected the network 192.168.20.0/24, or the address 192.168.20.1 alone)`,
    `${FILE}:30:10: policies[5].use: the list is empty (expected at least one uplink name)`,
    `${FILE}:31:11: policies[6].name: policy name 'a' is also used by policies[0].name (line 10) (expected each name once)`,
    `${FILE}:32:15: policies[6].protocol: expected tcp, udp, sctp, icmp or a protocol number 1..255, got "gre"`,
    `${FILE}:34:13: policies[6].strict: expected true or false, got the string 'maybe'`,
  ]);
  assert.deepEqual(problems(ISSUE_POLICIES.replace('nat: masquerade          #', 'nat: masq #')),
    [`${FILE}:6:10: uplinks[0].nat: expected masquerade or {snat: ADDRESS}, got the string 'masq'`]);
  assert.deepEqual(problems(ISSUE_POLICIES.replace('nat: masquerade\n', 'nat: {snat: isp2}\n')),
    [`${FILE}:10:17: uplinks[1].nat.snat: 'isp2' is not an IPv4 address (expected e.g. 198.51.100.2)`]);
});

test('a later policy shadowed by an earlier one is a warning, not an error', () => {
  const c = parseConfig(`${HEAD}  - name: lan
    from: 192.168.0.0/16
    use: [isp1]
  - name: office
    from: [192.168.20.0/24, 192.168.21.7]
    protocol: tcp
    port: 443
    use: [isp2]
  - name: other
    from: 10.0.0.0/8
    use: [isp2]
  - name: narrower-elsewhere
    from: 10.0.0.0/8
    to: 203.0.113.0/24
    use: [isp1]
  - name: any-port-after-a-port
    protocol: udp
    use: [isp1]
  - name: partly
    protocol: udp
    port: 53
    use: [isp2]
`, FILE);
  assert.deepEqual(c.warnings, [
    `${FILE}:13:5: policies[1]: policy 'office' never matches: every packet it selects is taken first by policies[0] 'lan' (line 10); move it up or narrow the earlier one`,
    `${FILE}:21:5: policies[3]: policy 'narrower-elsewhere' never matches: every packet it selects is taken first by policies[2] 'other' (line 18); move it up or narrow the earlier one`,
    `${FILE}:28:5: policies[5]: policy 'partly' never matches: every packet it selects is taken first by policies[4] 'any-port-after-a-port' (line 25); move it up or narrow the earlier one`,
  ]);
});
