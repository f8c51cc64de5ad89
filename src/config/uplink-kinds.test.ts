// The uplink kinds in the config file (issue 8): point-to-point, on-link gateways, learn: as dhcp:.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UplinkdError } from '../errors';
import { parseConfig } from './load';

const FILE = '/etc/uplinkd/uplinkd.yaml';

function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof UplinkdError);
    return e.message.split('\n');
  }
  return [];
}

test('the issue forms are accepted: pppd and LTE learned, a cloud /32 with an on-link gateway', () => {
  const c = parseConfig(`uplinks:
  - name: flets          # PPPoE: address, peer and routes come from pppd
    interface: ppp0
    dhcp: true
  - name: cloud
    interface: ens5
    address: 203.0.113.2/32
    gateway: 172.31.1.1  # outside the prefix: on-link
  - name: lte
    interface: wwan0
    learn: true
`, FILE);
  assert.deepEqual(c.uplinks.map((u) => [u.name, u.dhcp, u.address?.ip, u.gateway]), [
    ['flets', true, undefined, undefined], ['cloud', false, '203.0.113.2', '172.31.1.1'], ['lte', true, undefined, undefined],
  ]);
});

test('a static point-to-point uplink: peer, gateway optional (default dev IF) or the peer', () => {
  const c = parseConfig(`uplinks:
  - {name: a, interface: ppp0, address: 100.64.7.2/32, peer: 10.64.0.1}
  - {name: b, interface: ppp1, address: 100.64.8.2/32, peer: 10.64.0.1, gateway: 10.64.0.1}
`, FILE);
  assert.deepEqual(c.uplinks.map((u) => [u.peer, u.gateway]), [['10.64.0.1', undefined], ['10.64.0.1', '10.64.0.1']]);
});

test('bad kinds are refused with the field and what was expected', () => {
  assert.match(problems('uplinks:\n  - {name: a, interface: ppp0, address: 100.64.7.2/32, peer: 100.64.7.2}\n')[0]!,
    /:2:62: uplinks\[0\]\.peer: 100\.64\.7\.2 is the uplink's own address \(expected the address of the other end/);
  assert.match(problems('uplinks:\n  - {name: a, interface: ppp0, address: 100.64.7.2/32, peer: ten}\n')[0]!,
    /uplinks\[0\]\.peer: 'ten' is not an IPv4 address/);
  assert.match(problems('uplinks:\n  - {name: a, interface: ppp0, learn: true, peer: 10.64.0.1}\n')[0]!,
    /uplinks\[0\]\.peer: not allowed with learn: true \(it is learned from the system/);
  assert.match(problems('uplinks:\n  - {name: a, interface: ppp0, learn: true, dhcp: false}\n')[0]!,
    /uplinks\[0\]\.learn: learn: true contradicts dhcp: false/);
  assert.match(problems('uplinks:\n  - {name: a, interface: ens5, address: 203.0.113.2/32, gateway: 203.0.113.2}\n')[0]!,
    /uplinks\[0\]\.gateway: 203\.0\.113\.2 is the uplink's own address/);
  // A dhcp/learn that is not a boolean is the one error: not also "address missing", "gateway missing".
  for (const [key, value] of [['dhcp', 'yes'], ['learn', 'on'], ['dhcp', '"true"']]) {
    assert.deepEqual(problems(`uplinks:\n  - {name: a, interface: eth1, ${key}: ${value}}\n`).filter((l) => /uplinks\[0\]/.test(l)).map((l) => l.replace(/^.*?uplinks\[0\]\.(\w+).*$/, '$1')), [key], `${key}: ${value}`);
  }
  // Without a peer, a gateway is still required.
  assert.match(problems('uplinks:\n  - {name: a, interface: ens5, address: 203.0.113.2/32}\n')[0]!,
    /uplinks\[0\]\.gateway: missing/);
});
