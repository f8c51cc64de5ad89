// `table ip uplinkd` edited by hand with real nft, keeping the comments uplinkd reads: a rule made to do something
// else under its own comment, and a rule replaced by a copy of another rule with that rule's comment (same count,
// same hashes). `status` says the table differs, `apply` puts it back; the daemon, told by nf_tables notifications,
// puts it back by itself. What is compared is what the rules do (src/nft/rule-effect.ts), not their comments.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryDaemon } from '../../src/daemon/control-client';
import type { DaemonStatus } from '../../src/daemon/daemon';
import { startDaemon, stopDaemon, type RunningDaemon } from '../../lab/daemon';
import { inNs, waitFor } from '../../lab/exec';
import { uplinkd } from '../../lab/inspect';
import { stateDirOf } from '../../lab/topology';
import { NEEDS_ROOT, removeDaemonNamespace, statePaths, vethNamespace } from './support';

const PREFIX = `fx7-pe${process.pid % 1000}-`;
const NS = `${PREFIX}r`;
const STATE = `${stateDirOf(PREFIX)}r`;
const CONFIG = path.join(STATE, 'uplinkd.yaml');
const TEXT = [
  'uplinks:',
  '  - {name: isp1, interface: wan0, address: 198.51.100.2/24, gateway: 198.51.100.1}',
  '  - {name: isp2, interface: wan1, address: 192.0.2.2/24, gateway: 192.0.2.1}',
  ...statePaths(STATE),
  'daemon:',
  '  debounce: 5ms',
  '  resync_interval: 1h', // so only the nf_tables notifications can make the daemon look
  '',
].join('\n');

interface JsonRule { chain: string; handle: number; comment?: string }

const nft = async (args: string[]) => {
  const r = await inNs(NS, 'nft', args, { allowFail: true });
  assert.equal(r.code, 0, `nft ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
/** The table as `nft list` prints it (no handles): what is compared before and after. */
const listing = () => nft(['list', 'table', 'ip', 'uplinkd']);
/** The rule whose comment starts with `why` (e.g. `isp1: pin leaving`), with its handle. */
async function ruleOf(why: string): Promise<JsonRule> {
  const items = (JSON.parse(await nft(['-a', '-j', 'list', 'table', 'ip', 'uplinkd'])) as { nftables: { rule?: JsonRule }[] }).nftables;
  const rule = items.flatMap((i) => (i.rule ? [i.rule] : [])).find((r) => r.comment?.startsWith(`${why} #`));
  assert.ok(rule, `no rule ${why}`);
  return rule;
}
/** The statements of the rule whose comment starts with `why`, as `nft list` prints them. */
async function statementsOf(why: string): Promise<string> {
  const line = (await listing()).split('\n').find((l) => l.includes(`comment "${why} #`));
  assert.ok(line, `no rule ${why}`);
  return line.trim().replace(/ comment "[^"]*"$/, '');
}

/** isp1's leaving rule now sets another mark, under its own comment. */
async function remarkKeepingComment(): Promise<void> {
  const rule = await ruleOf('isp1: pin leaving');
  const edited = (await statementsOf('isp1: pin leaving')).replace(/\| 0x[0-9a-f]{8}$/, '| 0x7e000000');
  await nft(['replace', 'rule', 'ip', 'uplinkd', rule.chain, 'handle', String(rule.handle), ...edited.split(' '), 'comment', JSON.stringify(rule.comment)]);
}

/** isp2's leaving rule replaced by a copy of isp1's, comment and all: as many rules, every one with the table's hash. */
async function copyWithComment(): Promise<void> {
  const target = await ruleOf('isp2: pin leaving');
  const source = await ruleOf('isp1: pin leaving');
  const statements = await statementsOf('isp1: pin leaving');
  await nft(['replace', 'rule', 'ip', 'uplinkd', target.chain, 'handle', String(target.handle), ...statements.split(' '), 'comment', JSON.stringify(source.comment)]);
}

describe('table ip uplinkd edited by hand, comments kept', { skip: NEEDS_ROOT }, () => {
  let daemon: RunningDaemon | undefined;
  let original = '';
  before(async () => {
    await vethNamespace(NS, STATE, [['wan0', '198.51.100.2/24'], ['wan1', '192.0.2.2/24']]);
    await fs.writeFile(CONFIG, TEXT);
    const applied = await uplinkd(NS, ['apply', '-c', CONFIG]);
    assert.equal(applied.code, 0, applied.stderr);
    original = await listing();
  });
  after(() => removeDaemonNamespace(daemon, CONFIG, NS, STATE));

  for (const [what, edit] of [['a rule that sets another mark under its own comment', remarkKeepingComment],
    ['a rule replaced by a copy of another, comment and all', copyWithComment]] as const) {
    it(`${what}: status says the table differs, apply puts it back`, async () => {
      await edit();
      const edited = await listing();
      assert.notEqual(edited, original, 'the edit took');
      assert.equal(edited.split('\n').filter((l) => / comment "/.test(l)).length, original.split('\n').filter((l) => / comment "/.test(l)).length);
      const status = await uplinkd(NS, ['status', '-c', CONFIG]);
      assert.match(status.stdout, /flow pinning: table ip uplinkd differs from the configuration/, status.stdout);
      const applied = await uplinkd(NS, ['apply', '-c', CONFIG]);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stdout, /^nft -f - <<< 'table ip uplinkd/m);
      assert.equal(await listing(), original, 'the table is as uplinkd wrote it again');
      assert.match((await uplinkd(NS, ['status', '-c', CONFIG])).stdout, /flow pinning: in place/);
    });
  }

  it('the daemon notices an edit that keeps the comment (nf_tables notification) and puts the table back', async () => {
    daemon = await startDaemon(NS, CONFIG);
    const socket = path.join(STATE, 'control.sock');
    const status = () => queryDaemon(socket, { cmd: 'status' }) as Promise<DaemonStatus>;
    await waitFor('in sync', async () => ((await status()).inSync ? true : undefined), 10_000);
    await remarkKeepingComment();
    await waitFor('the table put back', async () => ((await listing()) === original ? true : undefined), 10_000, 50);
    await waitFor('the restoring apply line', async () => daemon!.lines.find((l) => /event=apply change="nft -f -/.test(l) && /nftables/.test(l)), 5_000, 20);
    assert.equal((await status()).pinningInPlace, true);
    await stopDaemon(daemon, 'SIGTERM');
    daemon = undefined;
  });
});
