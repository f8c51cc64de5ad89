import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../log';
import { healthActions } from './actions';
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
    });
    let done: Promise<void> | undefined;
    emitter.on('change', (c: HealthChange) => (done = act(c)));
    emitter.on('change', () => (daemonHeard = true));
    emitter.emit('change', change('up', 'down'));
    await done;
    assert.equal(heardWhenAsked, true, 'the daemon had marked itself busy before the actions asked whether it is idle');
  });

  it('after the replan, clears the dead uplink\'s connections, only when it went down', async () => {
    const steps: string[] = [];
    const lines: string[] = [];
    const run: CommandRunner = async (file, args) => {
      steps.push(`${file} ${args.join(' ')}`);
      return { code: 0, stdout: '', stderr: 'conntrack v1.4.7 (conntrack-tools): 4 flow entries have been deleted.\n' };
    };
    const missingDir = path.join(os.tmpdir(), `ulhl-no-hooks-${process.pid}`);
    assert.equal(fs.existsSync(missingDir), false);
    const act = healthActions({
      hooksDir: () => missingDir,
      log: createLogger({ sink: (l) => lines.push(l) }),
      afterReplan: async () => {
        steps.push('replanned');
      },
      runCommand: run,
      rxPackets: () => 1001,
    });
    await act(change('up', 'down'));
    await act(change('down', 'up'));
    await act(change('up', 'degraded'));
    assert.deepEqual(steps, ['replanned', 'conntrack -D -f ipv4 --reply-dst 198.51.100.2', 'replanned', 'replanned']);
    assert.ok(lines.some((l) => l.includes('event=conntrack_cleared') && l.includes('flows=4') && l.includes('uplink=isp1')));
  });

  it('keeps the connections of a path not confirmed dead, still receiving, or kept as the last resort', async () => {
    const lines: string[] = [];
    const ran: string[] = [];
    let lastResort = false;
    const act = healthActions({
      hooksDir: () => path.join(os.tmpdir(), `ulhl-no-hooks-${process.pid}`),
      log: createLogger({ sink: (l) => lines.push(l) }),
      afterReplan: async () => undefined,
      runCommand: async (file, args) => {
        ran.push(`${file} ${args.join(' ')}`);
        return { code: 0, stdout: '', stderr: '0 flow entries have been deleted.' };
      },
      lastResort: () => lastResort,
      rxPackets: () => 1500,
    });
    await act(change('up', 'down', { pathSilent: false }));
    await act(change('up', 'down', { rxPackets: 1000 }));
    lastResort = true;
    await act(change('up', 'down', { rxPackets: 1500 }));
    assert.deepEqual(ran, []);
    const kept = lines.filter((l) => l.includes('event=conntrack_kept'));
    assert.equal(kept.length, 3);
    assert.match(kept[0], /the targets are silent, not the path/);
    assert.match(kept[1], /received 500 packets since the verdict/);
    assert.match(kept[2], /last resort/);
    lastResort = false;
    await act(change('up', 'down', { rxPackets: 1500 }));
    assert.equal(ran.length, 1, 'a silent path, still silent, is cleared');
  });

  it('a conntrack failure is logged and does not stop the hooks', async () => {
    const lines: string[] = [];
    const act = healthActions({
      hooksDir: () => path.join(os.tmpdir(), `ulhl-no-hooks-${process.pid}`),
      log: createLogger({ sink: (l) => lines.push(l) }),
      afterReplan: async () => undefined,
      rxPackets: () => undefined,
      runCommand: async () => ({ code: null, stdout: '', stderr: '', error: Object.assign(new Error('spawn conntrack ENOENT'), { code: 'ENOENT' }) }),
    });
    await act(change('up', 'down'));
    assert.ok(lines.some((l) => l.includes('level=warn') && l.includes('conntrack is not installed')));
  });
});
