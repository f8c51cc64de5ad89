// A provider handing out a new address and a new gateway, as the daemon's tests and the demo need.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { startDhcpServer } from './dhcp';
import { inNs, ipIn, waitFor } from './exec';
import type { LabInfo, Provider } from './topology';

/** Restarts the provider's dnsmasq with a new gateway address and range; the old gateway address goes away. */
export async function renumberProvider(lab: LabInfo, current: Provider, next: { gateway: string; range: [string, string] }): Promise<Provider> {
  const ns = lab.ns[current.name as 'isp1' | 'isp2'];
  const pidFile = path.join(lab.stateDir, `dnsmasq.${current.name}.pid`);
  const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
  process.kill(pid, 'SIGTERM');
  await waitFor('dnsmasq to exit', async () => (alive(pid) ? undefined : true), 5_000, 50);
  await fs.rm(path.join(lab.stateDir, `dnsmasq.${current.name}.leases`), { force: true });
  // Old address first: deleting a primary address takes its secondaries along.
  await ipIn(ns, ['addr', 'del', `${current.gateway}/${current.prefixlen}`, 'dev', 'cust']);
  await ipIn(ns, ['addr', 'add', `${next.gateway}/${current.prefixlen}`, 'dev', 'cust']);
  const provider: Provider = { ...current, gateway: next.gateway, dhcpRange: next.range };
  await startDhcpServer(ns, provider, lab.stateDir, 120);
  return provider;
}

/** Runs the lab's dhclient for `ifname` with extra arguments (e.g. -r to release and stop it). */
export async function dhclient(lab: LabInfo, ifname: string, extra: string[]): Promise<void> {
  const pidFile = path.join(lab.stateDir, `dhclient.${ifname}.pid`);
  await inNs(lab.ns.router, 'dhclient', [
    '-4', ...extra,
    '-cf', path.join(lab.stateDir, 'dhclient.conf'),
    '-lf', path.join(lab.stateDir, `dhclient.${ifname}.leases`),
    '-pf', pidFile,
    ifname,
  ], { timeoutMs: 20_000, allowFail: true });
  await fs.rm(pidFile, { force: true });
}

/** Whether process `pid` exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
