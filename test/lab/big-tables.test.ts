// Tables uplinkd reads may be huge: a BGP daemon installing a full table into main (bird's and FRR's default),
// or into an uplink's own table. 200,000 routes in each must neither crash the CLI nor stop the daemon's cycles
// (a spread of a whole dump into push() threw RangeError past about 150,000 routes), and another program's
// routes in an uplink's table are summed up in the warnings, not listed one by one. Real kernel, namespace of
// its own; the daemon must follow a renumbering with the tables loaded.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type RunningDaemon } from '../../lab/daemon';
import { ipIn, waitFor } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeDaemonNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `bt${process.pid % 1000}-`;
const NS = `${PREFIX}x`;
const STATE = `${stateDirOf(PREFIX)}x`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');
const ROUTES = 200_000;

const TEXT = [
  'uplinks:',
  '  - {name: isp1, interface: up1, address: 198.51.100.2/24, gateway: 198.51.100.1, table: 3000}',
  '  - {name: isp2, interface: up2, address: 203.0.113.2/24, gateway: 203.0.113.1, table: 1727}',
  'daemon: {debounce: 5ms}',
  ...statePaths(STATE),
  '',
].join('\n');

/** The i-th /24 from 11.0.0.0 on, as a full table spreads its prefixes. */
const prefix = (i: number): string => `${11 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;

async function load(table: string, gateway: string, dev: string): Promise<void> {
  const lines = Array.from({ length: ROUTES }, (_, i) => `route add ${prefix(i)} via ${gateway} dev ${dev} table ${table} proto bgp`);
  await ipIn(NS, ['-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 180_000 });
}

describe('200,000 routes in main and in an uplink\'s table (BGP feeds)', { skip: NEEDS_ROOT, timeout: 300_000 }, () => {
  let daemon: RunningDaemon | undefined;
  before(async () => {
    await vethNamespace(NS, STATE, [['up1', '198.51.100.2/24'], ['up2', '203.0.113.2/24']]);
    await fs.writeFile(CONFIG, TEXT);
    await load('main', '198.51.100.1', 'up1');
    await load('3000', '198.51.100.1', 'up1');
  });
  after(() => removeDaemonNamespace(daemon, CONFIG, NS, STATE));

  it('plan and apply read them, and the warnings count the foreign routes instead of listing each', async () => {
    const plan = await uplinkd(NS, ['plan', '-c', CONFIG], { timeoutMs: 120_000 });
    assert.equal(plan.code, 0, plan.stderr);
    const warnings = `${plan.stdout}\n${plan.stderr}`.split('\n').filter((l) => l.includes("is in uplinkd's table 3000"));
    assert.ok(warnings.length <= 5, `${warnings.length} lines name single foreign routes`);
    assert.match(`${plan.stdout}\n${plan.stderr}`, new RegExp(`${ROUTES - 5} more foreign routes are in uplinkd's table 3000 \\(${ROUTES} in all\\)`));
    const apply = await uplinkd(NS, ['apply', '-c', CONFIG], { timeoutMs: 120_000 });
    assert.equal(apply.code, 0, apply.stderr);
    const rules = (await ipIn(NS, ['rule', 'show'])).stdout;
    assert.match(rules, /from 198\.51\.100\.2 lookup 3000/);
    assert.match(rules, /from 203\.0\.113\.2 lookup 1727/);
  });

  it('the daemon runs its cycles beside the feed in main, which makes no cycle, and follows a renumbering', async () => {
    // The daemon keeps every route of uplinkd's own tables in view (collisions): a feed there is the plan/apply case above.
    await ipIn(NS, ['route', 'flush', 'table', '3000', 'proto', 'bgp'], { timeoutMs: 120_000 });
    daemon = await startDaemon(NS, CONFIG, undefined, 'debug'); // debug: every cycle's causes are logged
    await waitFor('ready', async () => (daemon!.lines.some((l) => l.includes('event=ready')) ? true : undefined), 60_000);
    const cycles = async (): Promise<number> => {
      const r = await uplinkd(NS, ['status', '--json', '-c', CONFIG]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { cycles: number }).cycles;
    };
    // Quiet first: the cycles that the start's own changes cause are over when two reads a second apart agree.
    let before = await cycles();
    await waitFor('no cycle for a second', async () => {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await cycles();
      const quiet = now === before;
      before = now;
      return quiet ? true : undefined;
    }, 30_000);
    // Churn of the feed in main (routes through an uplink): the planner reads none of it, so it makes no cycle.
    for (let batch = 0; batch < 4; batch++) {
      const lines = Array.from({ length: 500 }, (_, i) => `route replace ${prefix(batch * 500 + i)} via 198.51.100.${1 + ((batch + 1) % 2)} dev up1 table main proto bgp`);
      await ipIn(NS, ['-batch', '-'], { input: `${lines.join('\n')}\n` });
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const during = (await cycles()) - before;
    const causedByFeed = daemon.lines.filter((l) => /cause="[^"]*route 11\./.test(l));
    assert.deepEqual(causedByFeed.slice(0, 3), [], `${during} cycles during 2,000 changes of main's BGP routes; cycles caused by them`);
    assert.ok(during <= 1, `${during} cycles during 2,000 changes of main's BGP routes (at most a periodic resync expected)`);
    await ipIn(NS, ['address', 'del', '203.0.113.2/24', 'dev', 'up2']);
    await ipIn(NS, ['address', 'add', '203.0.113.9/24', 'dev', 'up2']);
    await fs.writeFile(CONFIG, TEXT.replace('address: 203.0.113.2/24', 'address: 203.0.113.9/24'));
    daemon.child.kill('SIGHUP');
    await waitFor('the rule of the new address', async () => (/from 203\.0\.113\.9 lookup 1727/.test((await ipIn(NS, ['rule', 'show'])).stdout) ? true : undefined), 60_000)
      .catch((e: Error) => { throw new Error(`${e.message}; daemon log:\n${daemon!.lines.slice(-30).join('\n')}`); });
    assert.deepEqual(daemon.lines.filter((l) => /cycle-failed|RangeError|call stack/.test(l)), []);
  });
});
