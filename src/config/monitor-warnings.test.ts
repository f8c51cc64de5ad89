import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load';
import { configuredPlace, monitorWarnings } from './monitor-warnings';

const yaml = (isp1Targets: string, isp2Targets: string) => `
uplinks:
  - name: isp1
    interface: if1
    address: 198.51.100.2/24
    gateway: 198.51.100.1
    monitor:
      targets: ${isp1Targets}
  - name: isp2
    interface: if2
    dhcp: true
    monitor:
      targets: ${isp2Targets}
`;

const warn = (isp1: string, isp2: string, place = configuredPlace) => {
  const config = parseConfig(yaml(isp1, isp2), 'test.yaml');
  return monitorWarnings(config, place(config));
};

describe('monitor warnings', () => {
  it('none for two targets per uplink beyond the first hop', () => {
    assert.deepEqual(warn('[203.0.113.5, 192.0.2.53]', '[203.0.113.5, 192.0.2.53]'), []);
  });

  it('a target that is the uplink\'s gateway cannot see past the first hop', () => {
    const w = warn('[198.51.100.1, 192.0.2.53]', '[203.0.113.5, 192.0.2.53]');
    assert.deepEqual(w, [
      "uplink isp1: monitor target 198.51.100.1 is the uplink's own gateway: it cannot see past the first hop (it answers while the provider's upstream is dead)",
    ]);
  });

  it('a target on the uplink\'s own network (static from the config, DHCP from what the planner saw)', () => {
    const w = warn('[198.51.100.77, 192.0.2.53]', '[203.0.113.5, 100.64.0.1]', () => (name) =>
      name === 'isp1' ? { network: '198.51.100.0/24', gateway: '198.51.100.1' } : { network: '100.64.0.0/10', gateway: '100.64.0.254' });
    assert.equal(w.length, 2);
    assert.match(w[0], /^uplink isp1: monitor target 198\.51\.100\.77 is on the uplink's own network 198\.51\.100\.0\/24: it cannot see past the first hop/);
    assert.match(w[1], /^uplink isp2: monitor target 100\.64\.0\.1 is on the uplink's own network 100\.64\.0\.0\/10/);
  });

  it('fewer than two targets', () => {
    const w = warn('[203.0.113.5]', '[203.0.113.5, 192.0.2.53]');
    assert.deepEqual(w, [
      'uplink isp1: monitor has only one target (203.0.113.5): its own outage or rate limit is taken for the uplink\'s; use two or more targets on different networks',
    ]);
  });

  it('one target shared by every uplink and no other: a single point of failure for all', () => {
    const w = warn('[9.9.9.9]', '[9.9.9.9]');
    assert.equal(w.length, 3);
    assert.match(w[2], /^every uplink \(isp1, isp2\) monitors only 9\.9\.9\.9: a single point of failure for all uplinks/);
    // Different single targets are weak each, but not one shared point of failure.
    assert.ok(!warn('[9.9.9.9]', '[1.1.1.1]').some((x) => x.startsWith('every uplink')));
  });
});
