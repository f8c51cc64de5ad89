import type { Config } from '../config/types';
import { removeOwnedFile, renderRtProtos, renderRtTables, writeOwnedFile } from '../system/iproute2-names';

/** iproute2 names for uplinkd's tables: the balance table is `uplinkd`, each uplink's table its name. */
export function tableNames(config: Config): { number: number; name: string }[] {
  return [{ number: config.tableBase, name: 'uplinkd' }, ...config.uplinks.map((u) => ({ number: u.table, name: u.name }))];
}

/**
 * Registers uplinkd's table and protocol names for iproute2 (`ip route show table isp1`). With `previous` (the
 * configuration a reload replaces): the name files uplinkd wrote at its paths.rt_tables / paths.rt_protos that the
 * new one no longer names are removed (only files carrying uplinkd's header: removeOwnedFile), so a moved path
 * leaves nothing behind. Throws UplinkdError('io') when a file cannot be written or removed.
 */
export async function syncOwnedNames(config: Config, previous?: Config): Promise<void> {
  await writeOwnedFile(config.paths.rtTables, renderRtTables(tableNames(config)));
  await writeOwnedFile(config.paths.rtProtos, renderRtProtos([{ number: config.protocol, name: 'uplinkd' }]));
  const now = new Set([config.paths.rtTables, config.paths.rtProtos]);
  for (const old of new Set(previous ? [previous.paths.rtTables, previous.paths.rtProtos] : [])) {
    if (!now.has(old)) await removeOwnedFile(old);
  }
}

/**
 * Removes the rt_tables.d and rt_protos.d files syncOwnedNames() wrote (config.paths), only if uplinkd wrote them
 * (removeOwnedFile()); throws UplinkdError('io') when one cannot be removed.
 */
export async function removeOwnedNames(config: Config): Promise<void> {
  await removeOwnedFile(config.paths.rtTables);
  await removeOwnedFile(config.paths.rtProtos);
}
