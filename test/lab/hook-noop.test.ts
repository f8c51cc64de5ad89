// `uplinkd hook` run as a DHCP client runs it (environment `reason`, `interface`) against a real daemon at its default
// log level (info) whose kernel already matches: the daemon's log says in one info line that the hook's resync found
// nothing to change, so the journal shows the hook ran.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitForLine, type RunningDaemon } from '../../lab/daemon';
import { labEnv } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { parseLine } from '../../src/log';
import { NEEDS_ROOT, oneUplinkDaemon, removeDaemonNamespace } from './support';

const PREFIX = `fx7-hk${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = stateDirOf(PREFIX);

describe('uplinkd hook with nothing to change', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  let config = '';
  before(async () => {
    ({ daemon, config } = await oneUplinkDaemon(NS, STATE));
  });
  after(() => removeDaemonNamespace(daemon, config, NS, STATE));

  it('the daemon logs one info line naming the hook and that nothing changed', async () => {
    // Converged: the start cycle and the echo of its own changes.
    await waitForLine(daemon!, /event=apply /, 10_000);
    const hook = await uplinkd(NS, ['hook', '-c', config], { env: labEnv({ reason: 'RENEW', interface: 'wan0' }) });
    assert.equal(hook.code, 0, hook.stderr);
    const line = parseLine(await waitForLine(daemon!, /event=in-sync /, 10_000));
    assert.equal(line.level, 'info');
    assert.equal(line.msg, 'resync asked for (hook RENEW on wan0): nothing to change');
    assert.equal(daemon!.lines.filter((l) => /event=in-sync /.test(l)).length, 1, 'one line');
    assert.ok(!daemon!.lines.some((l) => /event=apply .*hook RENEW/.test(l)), 'nothing was applied for the hook');
  });
});
