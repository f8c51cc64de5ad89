// Clearing the connections of a dead uplink (and only those: never a global flush).
// Flows that left through the uplink are the ones whose replies come back to its address:
// locally originated ones (source = the address) and LAN flows masqueraded to it. Deleting
// them makes the next packet of each flow a new connection, routed (and masqueraded) through
// a live uplink instead of leaving with the dead uplink's source address and vanishing.
// The `conntrack` tool is used: one process per state change, not per probe, and it speaks
// ctnetlink (filtered dump + delete) correctly already; a codec of our own would be more code.
import { hex32 } from '../model/text';
import { execFile } from 'node:child_process';
import { isIpv4 } from '../model/ipv4';

import { UplinkdError } from '../errors';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started (e.g. ENOENT: not installed). */
  error?: NodeJS.ErrnoException;
}

export type CommandRunner = (file: string, args: string[]) => Promise<CommandResult>;

/**
 * The `conntrack` arguments deleting the IPv4 flows whose replies go to `address` (`-D -f ipv4 --reply-dst A`):
 * the uplink's own and the LAN's masqueraded flows, nothing else. Throws UplinkdError('usage') for a non-IPv4 address.
 */
export function conntrackArgs(address: string): string[] {
  if (!isIpv4(address)) throw new UplinkdError('usage', `not an IPv4 address: '${address}'`);
  return ['-D', '-f', 'ipv4', '--reply-dst', address];
}

/**
 * Arguments deleting the IPv4 conntrack entries whose conntrack mark has `mark` in the bits of
 * `mask` (conntrack(8) `--mark MARK/MASK`): the flows pinned to one uplink (docs/pinning.md),
 * whether or not they were masqueraded. Throws UplinkdError('usage') for a mark outside its mask.
 */
export function conntrackMarkArgs(mark: number, mask: number): string[] {
  if (mark === 0 || (mark & ~mask) !== 0) throw new UplinkdError('usage', `mark ${hex32(mark)} is not a non-zero value inside mask ${hex32(mask)}`);
  return ['-D', '-f', 'ipv4', '--mark', `${hex32(mark)}/${hex32(mask)}`];
}

/** How many flows the tool says it deleted; undefined when it did not say. */
export function deletedCount(output: string): number | undefined {
  const m = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(output);
  return m ? Number(m[1]) : undefined;
}

const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && typeof e.code === 'string') resolve({ code: null, stdout, stderr, error: e });
      else resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
    });
  });

/**
 * Deletes the conntrack entries whose reply goes to `address`; resolves with how many.
 * Throws UplinkdError('io') when conntrack is missing or fails. conntrack exits 1 when
 * nothing matched ("0 flow entries have been deleted"): that is success.
 */
export async function clearUplinkConntrack(address: string, run: CommandRunner = runCommand): Promise<number> {
  return deleteFlows(conntrackArgs(address), address, run);
}

/**
 * Deletes the conntrack entries carrying pinning mark `mark` in the bits of `mask` (see
 * conntrackMarkArgs); resolves with how many. Errors as clearUplinkConntrack.
 */
export async function clearMarkedConntrack(mark: number, mask: number, run: CommandRunner = runCommand): Promise<number> {
  return deleteFlows(conntrackMarkArgs(mark, mask), `mark ${hex32(mark)}/${hex32(mask)}`, run);
}

async function deleteFlows(args: string[], what: string, run: CommandRunner): Promise<number> {
  const r = await run('conntrack', args);
  if (r.error) {
    const why = r.error.code === 'ENOENT' ? 'conntrack is not installed (Debian package conntrack)' : r.error.message;
    throw new UplinkdError('io', `cannot clear connections of ${what}: ${why}`, { errno: r.error.code, cause: r.error });
  }
  const deleted = deletedCount(r.stderr + r.stdout);
  if (deleted !== undefined && (r.code === 0 || r.code === 1)) return deleted;
  const said = (r.stderr || r.stdout).trim();
  throw new UplinkdError('io', `conntrack ${args.join(' ')} failed (exit ${r.code})${said ? `: ${said}` : ''}`);
}
