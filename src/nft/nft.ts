// Talking to nftables: in this process through libnftables (src/nft/libnftables.ts), else through
// the `nft` tool, one process per read or change; only inside a cycle (src/engine/cycle.ts) that
// reads the table (apply, the daemon's start, reload, periodic resync, an nf_tables notification
// about the table: src/nft/events.ts; the table depends on the config alone), never per packet or
// rtnetlink event. Only `table ip uplinkd` is ever read, replaced or deleted (other programs' rules
// are read for the mark warnings, src/nft/neighbours-io.ts).
import { spawn } from 'node:child_process';
import { UplinkdError } from '../errors';
import { ensureExecCgroups } from './exec';
import { loadLibnftables } from './libnftables';
import { jsonRuleEffect, rulesEffectDigest } from './rule-effect';
import { commentHash, DELETE_SCRIPT, PIN_TABLE, pinningLayout, type NftObject, type PinningRuleset } from './ruleset';

export interface NftResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when nft could not be started (ENOENT: not installed). */
  error?: NodeJS.ErrnoException;
}

/** Runs what `nft args` with `input` on stdin would (tests inject a fake). */
export type NftRunner = (args: string[], input?: string) => Promise<NftResult>;

/**
 * The NftRunner of the nft program: spawns `nft` from PATH; killed (SIGKILL) after 10 s. Never rejects: a
 * missing binary is `error` (ENOENT), a failure a non-zero `code` with nft's stderr.
 */
export const spawnNft: NftRunner = (args, input) =>
  new Promise((resolve) => {
    const child = spawn('nft', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr, error });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });

let chosen: NftRunner | undefined;

/**
 * The real NftRunner: libnftables in this process (src/nft/libnftables.ts: off the event loop, one
 * command at a time, 10 s timeout) when its addon and the library load, else spawnNft; chosen at the
 * first call, the fallback's reason written to stderr once. Never rejects; results as nft(8) gives them.
 */
export const runNft: NftRunner = (args, input) => {
  if (!chosen) {
    const lib = loadLibnftables();
    if ('run' in lib) chosen = lib.run;
    else {
      process.stderr.write(`uplinkd: nft: ${lib.failure}: running the nft program for each command instead\n`);
      chosen = spawnNft;
    }
  }
  return chosen(args, input);
};

/** What the kernel holds of uplinkd's nftables table. */
export type ObservedPinning =
  | { kind: 'unavailable'; reason: string }
  | { kind: 'absent' }
  /**
   * `hash`: the one hash every rule carries, undefined when they disagree or some have none; `effect`: what the rules
   * do, whatever their comments say (rulesEffectDigest in rule-effect.ts); `layout`: its chains and other objects,
   * and the table's flags when it has any (pinningLayout in ruleset.ts).
   */
  | { kind: 'present'; hash?: string; rules: number; effect: string; layout: string };

function unavailable(r: NftResult): string | undefined {
  if (r.error?.code === 'ENOENT') return 'nft is not installed (Debian package nftables)';
  if (r.error) return `cannot run nft: ${r.error.message}`;
  return undefined;
}

/** One item of `nft -j list table` (libnftables-json(5)): metainfo, the table, its chains, rules, sets... */
type NftJsonItem = Record<string, {
  name?: string; comment?: string; type?: string; hook?: string; prio?: number; policy?: string; chain?: string; expr?: unknown[]; flags?: unknown;
} | undefined>;

/** Reads `table ip uplinkd` (`nft -j list table`). */
export async function readPinning(run: NftRunner = runNft): Promise<ObservedPinning> {
  const r = await run(['-j', 'list', 'table', ...PIN_TABLE.split(' ')]);
  const missing = unavailable(r);
  if (missing) return { kind: 'unavailable', reason: missing };
  if (r.code !== 0) {
    if (/No such file or directory/.test(r.stderr)) return { kind: 'absent' };
    return { kind: 'unavailable', reason: `nft list table ${PIN_TABLE} failed (exit ${r.code}): ${r.stderr.trim()}` };
  }
  let items: NftJsonItem[];
  try {
    items = (JSON.parse(r.stdout) as { nftables?: NftJsonItem[] }).nftables ?? [];
  } catch {
    return { kind: 'unavailable', reason: `nft printed no JSON for table ${PIN_TABLE}` };
  }
  const rules = items.flatMap((i) => (i.rule ? [i.rule] : []));
  const hashes = rules.map((r) => commentHash(r.comment));
  // What each rule does, read from its statements: a comment says nothing about them.
  const effect = rulesEffectDigest(rules.map((r) => ({ chain: r.chain ?? '', effect: jsonRuleEffect(r.expr ?? []) })));
  const unique = new Set(hashes);
  const hash = unique.size === 1 ? [...unique][0] : undefined;
  // Everything but the rules, the table itself and nft's metainfo: chains with their hooks and policies, and any set,
  // map or object someone added.
  const objects: NftObject[] = items.flatMap((i) => Object.entries(i)
    .filter(([kind, o]) => kind !== 'rule' && kind !== 'table' && kind !== 'metainfo' && o !== undefined)
    .map(([kind, o]) => ({ kind, name: o!.name, type: o!.type, hook: o!.hook, prio: o!.prio, policy: o!.policy })));
  // The table's own flags: uplinkd's table has none, and `flags dormant` switches every chain off while the rules
  // stay (nft 1.0.6 -j prints the flag wrongly, as "t": any flags differ).
  const flags = items.find((i) => i.table)?.table?.flags;
  if (flags !== undefined && !(Array.isArray(flags) && flags.length === 0)) objects.push({ kind: 'table', name: `flags ${JSON.stringify(flags)}` });
  return { kind: 'present', rules: hashes.length, effect, layout: pinningLayout(objects), ...(hash !== undefined ? { hash } : {}) };
}

async function runScript(script: string, what: string, run: NftRunner): Promise<void> {
  const r = await run(['-f', '-'], script);
  const missing = unavailable(r);
  if (missing) throw new UplinkdError('io', `cannot ${what}: ${missing}`, { errno: r.error?.code, cause: r.error });
  if (r.code !== 0) throw new UplinkdError('kernel', `cannot ${what}: nft -f - failed (exit ${r.code}): ${r.stderr.trim()}`);
}

/** Replaces uplinkd's table with `ruleset` in one nft transaction. */
export async function installPinning(ruleset: PinningRuleset, run: NftRunner = runNft): Promise<void> {
  await ensureExecCgroups(ruleset.cgroups);
  return runScript(ruleset.script, `install table ${PIN_TABLE}`, run);
}

/** Deletes uplinkd's table (a no-op when it does not exist); never touches other tables. */
export function deletePinning(run: NftRunner = runNft): Promise<void> {
  return runScript(DELETE_SCRIPT, `delete table ${PIN_TABLE}`, run);
}
