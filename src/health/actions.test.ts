import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../log';
import { healthActions, type UplinkDefaultState } from './actions';
import type { CommandRunner } from './conntrack';
import type { HealthChange } from './monitor';

const change = (from: HealthChange['from'], to: HealthChange['to'], more: Partial<HealthChange> = {}): HealthChange => ({
  uplink: 'isp1',
  from,
  to,
  reason: 'test',
  ...(to === 'down' && { pathSilent: true, rxPackets: 1000 }),
  ...more,
  stats: { state: to, since: 0, rttMs: null, jitterMs: null, lossPct: null, lastError: null, reason: 'test', targets: [], suspect: null },
  endpoint: { interface: 'if1', address: '198.51.100.2', gateway: '198.51.100.1' },
});

const isp = (name: string, health: UplinkDefaultState['health'], more: Partial<UplinkDefaultState> = {}): UplinkDefaultState => ({
  name, health, inDefault: health !== 'down', ...more,
});
const noHooks = path.join(os.tmpdir(), `ulhl-no-hooks-${process.pid}`);
/** isp1 down and out of the default, isp2 up carrying it; isp1's pinning mark 0x1a000000 (mask 0x7f000000). */
const isp2Carries = () => [isp('isp1', 'down'), isp('isp2', 'up')];
const pinMark = (name: string) => (name === 'isp1' ? { mark: 0x1a000000, mask: 0x7f000000 } : undefined);

/**
 * Health actions whose log lines and conntrack commands are recorded (every command reports 0 flows deleted), with
 * the uplinks' default states from `statuses`, the interface at `rxPackets` received and a grace of `graceMs` ms.
 */
function recordingActions(statuses: () => UplinkDefaultState[], rxPackets: number, graceMs: number) {
  const lines: string[] = [];
  const ran: string[] = [];
  const act = healthActions({
    hooksDir: () => noHooks,
    log: createLogger({ sink: (l) => lines.push(l) }),
    afterReplan: async () => undefined,
    runCommand: async (file, args) => {
      ran.push(`${file} ${args.join(' ')}`);
      return { code: 0, stdout: '', stderr: '0 flow entries have been deleted.' };
    },
    uplinks: statuses,
    pinMark,
    rxPackets: () => rxPackets,
    graceMs,
  });
  return { act, lines, ran };
}

describe('health actions', () => {
  it('waits for the replan that the same change triggers, even when the daemon hears of it after this listener', async () => {
    const emitter = new EventEmitter();
    let daemonHeard = false;
    let heardWhenAsked: boolean | undefined;
    const act = healthActions({
      hooksDir: () => path.join(os.tmpdir(), `ulhl-no-hooks-${process.pid}`),
      log: createLogger({ sink: () => undefined }),
      afterReplan: async () => {
        heardWhenAsked ??= daemonHeard;
      },
      runCommand: async () => ({ code: 1, stdout: '', stderr: '0 flow entries have been deleted.\n' }),
      rxPackets: () => 1000,
      uplinks: isp2Carries,
      graceMs: 0,
    });
    let done: Promise<void> | undefined;
    emitter.on('change', (c: HealthChange) => (done = act(c)));
    emitter.on('change', () => (daemonHeard = true));
    emitter.emit('change', change('up', 'down'));
    await done;
    assert.equal(heardWhenAsked, true, 'the daemon had marked itself busy before the actions asked whether it is idle');
  });

  it('after the replan and the grace period, clears the dead uplink\'s connections by address and by pinning mark', async () => {
    const steps: string[] = [];
    const lines: string[] = [];
    const run: CommandRunner = async (file, args) => {
      steps.push(`${file} ${args.join(' ')}`);
      return { code: 0, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 4 flow entries have been deleted.\n' };
    };
    assert.equal(fs.existsSync(noHooks), false);
    let statuses = isp2Carries();
    const act = healthActions({
      hooksDir: () => noHooks,
      log: createLogger({ sink: (l) => lines.push(l) }),
      afterReplan: async () => {
        steps.push('replanned');
      },
      runCommand: run,
      uplinks: () => statuses,
      pinMark,
      rxPackets: () => 1001,
      graceMs: 20,
    });
    await act(change('up', 'down'));
    statuses = [isp('isp1', 'up'), isp('isp2', 'up')];
    await act(change('down', 'up'));
    await act(change('up', 'degraded'));
    assert.deepEqual(steps, [
      'replanned', 'replanned',
      'conntrack -D -f ipv4 --reply-dst 198.51.100.2',
      'conntrack -D -f ipv4 --mark 0x1a000000/0x7f000000',
      'replanned', 'replanned',
    ]);
    assert.ok(lines.some((l) => l.includes('event=conntrack_cleared') && l.includes('flows=8') && l.includes('pinned=4') && l.includes('uplink=isp1')));
  });

  it('keeps the connections of a path not confirmed dead, still receiving, kept as the last resort, or failing with every other uplink', async () => {
    let statuses = isp2Carries();
    const { act, lines, ran } = recordingActions(() => statuses, 1500, 20);
    await act(change('up', 'down', { pathSilent: false }));
    await act(change('up', 'down', { rxPackets: 1000 }));
    statuses = [isp('isp1', 'down', { inDefault: true, lastResort: true }), isp('isp2', 'down', { inDefault: true, lastResort: true })];
    await act(change('up', 'down', { rxPackets: 1500 }));
    // A shared cause: isp2 went down too (it carries nothing better), whether or not the plan says last resort yet.
    statuses = [isp('isp1', 'down'), isp('isp2', 'down')];
    await act(change('up', 'down', { rxPackets: 1500 }));
    assert.deepEqual(ran, []);
    const kept = lines.filter((l) => l.includes('event=conntrack_kept'));
    assert.equal(kept.length, 4);
    assert.match(kept[0], /the targets are silent, not the path/);
    assert.match(kept[1], /received 500 packets since the verdict/);
    assert.match(kept[2], /last resort/);
    assert.match(kept[3], /no other uplink is up/);
    statuses = isp2Carries();
    await act(change('up', 'down', { rxPackets: 1500 }));
    assert.equal(ran.length, 2, 'a silent path, still silent, with isp2 carrying the default, is cleared');
  });

  it('a down that does not hold for the grace period, or whose uplink fails with the others meanwhile, keeps its connections', async () => {
    let statuses = isp2Carries();
    const { act, lines, ran } = recordingActions(() => statuses, 1000, 50);
    // Down, then up again 10 ms later: the first episode's clearing is called off.
    const first = act(change('up', 'down'));
    await new Promise((r) => setTimeout(r, 10));
    statuses = [isp('isp1', 'up'), isp('isp2', 'up')];
    await act(change('down', 'up'));
    await first;
    // Down while isp2 carries the default, then isp2 fails too within the grace period: a shared cause.
    statuses = isp2Carries();
    const second = act(change('up', 'down'));
    await new Promise((r) => setTimeout(r, 10));
    statuses = [isp('isp1', 'down', { inDefault: true, lastResort: true }), isp('isp2', 'down', { inDefault: true, lastResort: true })];
    await second;
    assert.deepEqual(ran, []);
    const kept = lines.filter((l) => l.includes('event=conntrack_kept'));
    assert.match(kept[0], /did not stay down for 50 ms/);
    assert.match(kept[1], /last resort/);
  });

  it('a conntrack failure is logged and does not stop the hooks', async () => {
    const lines: string[] = [];
    const act = healthActions({
      hooksDir: () => noHooks,
      log: createLogger({ sink: (l) => lines.push(l) }),
      afterReplan: async () => undefined,
      uplinks: isp2Carries,
      rxPackets: () => undefined,
      graceMs: 0,
      runCommand: async () => ({ code: null, stdout: '', stderr: '', error: Object.assign(new Error('spawn conntrack ENOENT'), { code: 'ENOENT' }) }),
    });
    await act(change('up', 'down'));
    assert.ok(lines.some((l) => l.includes('level=warn') && l.includes('conntrack is not installed')));
  });
});
