import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testConfig } from '../../test/support/test-config';
import { cgroup2Root, execCgroups, execInUplink, execWarnings } from './exec';
import { renderPinning } from './ruleset';
import { UplinkdError } from '../errors';

const MOUNTINFO = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

const config = (exec = true) => testConfig([
  { name: 'isp1', interface: 'if1', address: '198.51.100.2/24', gateway: '198.51.100.1' },
  { name: 'isp2', interface: 'if2' },
], { pinning: { enabled: true, markMask: 0x00ff0000 }, ...(exec ? { exec: { cgroup: 'uplinkd' } } : {}) });

test('the cgroup v2 mount point comes from mountinfo; none when only v1 is mounted', () => {
  assert.equal(cgroup2Root(MOUNTINFO), '/sys/fs/cgroup/unified');
  assert.equal(cgroup2Root(MOUNTINFO.split('\n').slice(0, 2).join('\n')), undefined);
});

test('exec cgroups: one per uplink, nft paths relative to /sys/fs/cgroup, marked and masqueraded in uplinkd\'s table', () => {
  const cgs = execCgroups(config(), '/sys/fs/cgroup/unified');
  assert.deepEqual(cgs.map((c) => [c.uplink, c.dir, c.nftPath, c.level, c.mark]), [
    ['isp1', '/sys/fs/cgroup/unified/uplinkd/isp1', 'unified/uplinkd/isp1', 2, 0x00010000],
    ['isp2', '/sys/fs/cgroup/unified/uplinkd/isp2', 'unified/uplinkd/isp2', 2, 0x00020000],
  ]);
  assert.deepEqual(execCgroups(config(false), '/sys/fs/cgroup/unified'), []);
  assert.deepEqual(execCgroups(config(), '/mnt/elsewhere'), [], 'nft only resolves paths under /sys/fs/cgroup');
  const t = renderPinning(config(), '/sys/fs/cgroup')!.table;
  assert.match(t, /\t\tsocket cgroupv2 level 2 "uplinkd\/isp2" meta mark set meta mark & 0xff00ffff \| 0x00020000 comment "isp2: uplinkd exec #/);
  assert.match(t, /\t\tmeta mark & 0x00ff0000 == 0x00020000 oifname "if2" masquerade comment "isp2: nat #/);
});

const V2_AT_BASE = '40 22 0:37 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n';
const V1_ONLY = MOUNTINFO.split('\n').slice(0, 2).join('\n');
const V2_ELSEWHERE = '40 22 0:37 / /mnt/cg2 rw,relatime - cgroup2 cgroup2 rw\n';

test('exec refuses clearly when not configured, without pinning, or for an unknown uplink: usage errors (exit 2)', async () => {
  const refuses = async (c: ReturnType<typeof config>, uplink: string, pattern: RegExp, mountinfo = V2_AT_BASE) =>
    assert.rejects(execInUplink(c, uplink, ['true'], mountinfo), (e: unknown) => e instanceof UplinkdError && e.code === 'usage' && pattern.test(e.message));
  await refuses(config(false), 'isp1', /exec is not configured/);
  await refuses({ ...config(), pinning: { enabled: false, markMask: 0x00ff0000 } }, 'isp1', /needs flow pinning/);
  await refuses(config(), 'isp9', /unknown uplink 'isp9'/);
  await refuses(config(), 'isp9', /unknown uplink 'isp9'/, V1_ONLY);
});

test('exec without a usable cgroup v2 hierarchy is a failure of the host (io, exit 1), not a usage error', async () => {
  const fails = async (mountinfo: string, pattern: RegExp) =>
    assert.rejects(execInUplink(config(), 'isp1', ['true'], mountinfo), (e: unknown) => e instanceof UplinkdError && e.code === 'io' && pattern.test(e.message));
  await fails(V1_ONLY, /no cgroup v2 hierarchy is mounted \(looked in \/proc\/self\/mountinfo\)/);
  await fails(V2_ELSEWHERE, /mounted at \/mnt\/cg2, outside \/sys\/fs\/cgroup/);
});

test('exec configured but unusable here is a warning naming why; none when usable or not configured', () => {
  assert.deepEqual(execWarnings(config(), V1_ONLY), [
    'exec: no cgroup v2 hierarchy is mounted (looked in /proc/self/mountinfo): uplinkd exec will not work',
  ]);
  assert.deepEqual(execWarnings(config(), ''), execWarnings(config(), V1_ONLY));
  assert.match(execWarnings(config(), V2_ELSEWHERE)[0]!, /^exec: the cgroup v2 hierarchy is mounted at \/mnt\/cg2, outside \/sys\/fs\/cgroup .*: uplinkd exec will not work$/);
  assert.match(execWarnings({ ...config(), pinning: { enabled: false, markMask: 0x00ff0000 } }, V2_AT_BASE)[0]!, /flow pinning.*: uplinkd exec will not work$/);
  assert.deepEqual(execWarnings(config(), V2_AT_BASE), []);
  assert.deepEqual(execWarnings(config(), MOUNTINFO), [], '/sys/fs/cgroup/unified is under nft\'s base');
  assert.deepEqual(execWarnings(config(false), V1_ONLY), []);
});
