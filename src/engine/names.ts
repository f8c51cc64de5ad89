import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/types';
import { BALANCE_TABLE_NAME } from '../config/values';
import { removeOwnedFile, renderRtProtos, renderRtTables, writeOwnedFile } from '../system/iproute2-names';
import { runtimeDir } from '../system/runtime-dir';

/** iproute2 names for uplinkd's tables: the balance table is `uplinkd`, each uplink's table its name. */
export function tableNames(config: Config): { number: number; name: string }[] {
  return [{ number: config.tableBase, name: BALANCE_TABLE_NAME }, ...config.uplinks.map((u) => ({ number: u.table, name: u.name }))];
}

/**
 * Where the name-file paths last written for the configuration file `config.file` are listed (a JSON array):
 * `DIR/names/<absolute path of the file, URI-encoded>.json`, so that a later run with other paths.rt_tables /
 * paths.rt_protos (a reload, `apply`, a restarted daemon, `down`) finds the files it wrote before.
 */
export function writtenNamesList(config: Config, dir = runtimeDir()): string {
  return path.join(dir, 'names', `${encodeURIComponent(path.resolve(config.file))}.json`);
}

/** The paths in the list at `list`; none when it is missing or malformed. */
async function readWritten(list: string): Promise<string[]> {
  try {
    const v = JSON.parse(await fs.readFile(list, 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((p): p is string => typeof p === 'string' && path.isAbsolute(p)) : [];
  } catch {
    return [];
  }
}

/**
 * Registers uplinkd's table and protocol names for iproute2 (`ip route show table isp1`). The name files uplinkd
 * wrote before at paths the configuration no longer names are removed (only files carrying uplinkd's header:
 * removeOwnedFile): those of `previous` (the configuration a reload replaces) and those listed for this file in
 * `dir` (writtenNamesList; a list that cannot be written only loses that memory). Throws UplinkdError('io') when a
 * name file cannot be written or removed.
 */
export async function syncOwnedNames(config: Config, previous?: Config, dir = runtimeDir()): Promise<void> {
  await writeOwnedFile(config.paths.rtTables, renderRtTables(tableNames(config)));
  await writeOwnedFile(config.paths.rtProtos, renderRtProtos([{ number: config.protocol, name: 'uplinkd' }]));
  const now = [config.paths.rtTables, config.paths.rtProtos];
  const list = writtenNamesList(config, dir);
  const before = [...(previous ? [previous.paths.rtTables, previous.paths.rtProtos] : []), ...await readWritten(list)];
  for (const old of new Set(before)) if (!now.includes(old)) await removeOwnedFile(old);
  try {
    await fs.mkdir(path.dirname(list), { recursive: true, mode: 0o700 });
    await fs.writeFile(list, `${JSON.stringify([...new Set(now)])}\n`, { mode: 0o600 });
  } catch {
    // no memory of these paths for a later run: a reload still knows them from `previous`
  }
}

/**
 * Removes the rt_tables.d and rt_protos.d files syncOwnedNames() wrote (config.paths, and the paths listed for this
 * configuration file in `dir`), only if uplinkd wrote them (removeOwnedFile()), then the list; throws
 * UplinkdError('io') when one cannot be removed.
 */
export async function removeOwnedNames(config: Config, dir = runtimeDir()): Promise<void> {
  const list = writtenNamesList(config, dir);
  for (const file of new Set([config.paths.rtTables, config.paths.rtProtos, ...await readWritten(list)])) await removeOwnedFile(file);
  await fs.rm(list, { force: true });
}
