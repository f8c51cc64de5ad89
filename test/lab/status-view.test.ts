// `uplinkd status` with a daemon running (issue 7, "status under 100 ms"): the CLI asks for the text view, which
// carries the status text and no health history, and talks to the socket through the blocking addon and write(2),
// so the process loads none of Node's stream modules. A real daemon monitoring two uplinks in a namespace of its
// own (its history fills every second); real CLI processes, whose built-in modules a preload lists at exit.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type RunningDaemon } from '../../lab/daemon';
import { labEnv } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { queryDaemon } from '../../src/daemon/control-client';
import { NEEDS_ROOT, removeDaemonNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `s9${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = stateDirOf(PREFIX);
const CONFIG = path.join(STATE, 'uplinkd.yaml');
const SOCKET = path.join(STATE, 'control.sock');
const PRELOAD = path.join(STATE, 'list-builtins.js');

// Nobody answers the targets (the veth peers stay in the namespace, without addresses): both uplinks go down,
// and the history gets a sample of each every second all the same.
const CONFIG_TEXT = [
  'uplinks:',
  '  - {name: isp1, interface: up1, address: 10.91.1.2/24, gateway: 10.91.1.1, weight: 1, monitor: {targets: [10.91.9.1, 10.91.9.2]}}',
  '  - {name: isp2, interface: up2, address: 10.91.2.2/24, gateway: 10.91.2.1, weight: 1, monitor: {targets: [10.91.9.1, 10.91.9.2]}}',
  'lan: [lan0]',
  ...statePaths(STATE, SOCKET),
  '',
].join('\n');

type FullStatus = { pid: number; text: string; history?: { uplinks: Record<string, { points: unknown[] }> } };

describe('status: the text view and a CLI without streams (issue 7)', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  before(async () => {
    await vethNamespace(NS, STATE, [['up1', '10.91.1.2/24'], ['up2', '10.91.2.2/24'], ['lan0', '192.168.91.1/24']]);
    await fs.writeFile(CONFIG, CONFIG_TEXT);
    await fs.writeFile(PRELOAD, "process.on('exit', () => process._rawDebug('BUILTINS ' + JSON.stringify(process.moduleLoadList)));\n");
    daemon = await startDaemon(NS, CONFIG);
  });
  after(() => removeDaemonNamespace(daemon, CONFIG, NS, STATE));

  it('the text view answers pid, configFile, configRealPath and text only (what the CLI needs to tell whether the daemon runs the file it was given); the full answer carries the history besides', async () => {
    let full: FullStatus | undefined;
    // generous bound: the history takes a sample each second
    for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
      full = (await queryDaemon(SOCKET, { cmd: 'status' })) as FullStatus;
      if (Object.values(full.history?.uplinks ?? {}).some((u) => u.points.length > 0)) break;
    }
    assert.ok(full?.history && Object.keys(full.history.uplinks).sort().join() === 'isp1,isp2', 'the full answer carries both uplinks\' history');
    const text = (await queryDaemon(SOCKET, { cmd: 'status', view: 'text' })) as Record<string, unknown>;
    assert.deepEqual(Object.keys(text).sort(), ['configFile', 'configRealPath', 'pid', 'text']);
    assert.equal(text.pid, daemon!.child.pid);
    assert.equal(text.configRealPath, await fs.realpath(CONFIG));
    assert.match(String(text.text), /^HEALTH +STATE/m);
    assert.match(String(text.text), new RegExp(`^daemon: running \\(pid ${daemon!.child.pid},`, 'm'));
    assert.ok(JSON.stringify(text).length < JSON.stringify(full).length / 2, 'the text view is the smaller answer');
  });

  for (const args of [['status'], ['status', '--json']]) {
    it(`uplinkd ${args.join(' ')} prints the daemon's answer and loads none of Node's stream modules`, async () => {
      const r = await uplinkd(NS, [...args, '-c', CONFIG], { env: labEnv({ NODE_OPTIONS: `--require ${PRELOAD}` }) });
      assert.equal(r.code, 0, r.stderr);
      const loaded = JSON.parse(/^BUILTINS (.*)$/m.exec(r.stderr)?.[1] ?? '[]') as string[];
      assert.ok(loaded.includes('NativeModule fs'), 'the preload listed the built-ins');
      // (internal/streams/utils is Node's own start-up: `node -e 0` loads it too)
      assert.deepEqual(loaded.filter((m) => /^NativeModule (net|stream|tty|internal\/streams\/(readable|writable|duplex))$/.test(m)), []);
      if (args.includes('--json')) {
        const s = JSON.parse(r.stdout) as FullStatus;
        assert.equal(s.pid, daemon!.child.pid);
        assert.ok(s.history, '--json keeps the history');
      } else {
        assert.match(r.stdout, /^UPLINK +INTERFACE/);
        assert.match(r.stdout, /^HEALTH +STATE/m);
        assert.match(r.stdout, new RegExp(`^daemon: running \\(pid ${daemon!.child.pid},`, 'm'));
      }
    });
  }
});
