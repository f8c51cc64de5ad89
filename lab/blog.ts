// The blog's world (issue 9, scenario 1): the router has ONE NIC, eth0. Untagged it is the LAN;
// tagged it carries VLAN 101 and VLAN 102 to two providers, each with its own DHCP server (as
// the blog's provider routers, whose DHCP cannot be turned off); both uplinks lease their address
// with a real client. Built on the VLAN lab (lab/lab.ts, `vlan: true`, both uplinks DHCP),
// with the LAN moved from its own NIC onto the trunk's untagged traffic:
//
//   lan host (eth0) --- switch: brlan (untagged) --- trunk --- router eth0   192.168.10.1/24
//                               br101 (VLAN 101) --- isp1      router eth0.101 = vlan101 (DHCP)
//                               br102 (VLAN 102) --- isp2      router eth0.102 = vlan102 (DHCP)
//
// Needs the 802.1Q driver: on the host kernel of these machines it runs in the UML guest.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { renderLabConfig } from './config';
import { ipIn } from './exec';
import { labDown, labUp } from './lab';
import { LAN, TRUNK_IF, type LabDhcpClient, type LabInfo } from './topology';

/** The switch's bridge of untagged trunk traffic and its port towards the LAN host. */
const LAN_BRIDGE = 'brlan';
const LAN_PORT = 'plan';

/** Builds the blog's world under `prefix`; on failure removes what it built and rethrows. */
export async function blogUp(prefix: string, dhcpClient: LabDhcpClient = 'dhclient'): Promise<LabInfo> {
  const lab = await labUp({ prefix, vlan: true, isp1: 'dhcp', isp2: 'dhcp', dhcpClient });
  try {
    const sw = lab.ns.switch;
    if (!sw) throw new UplinkdError('lab', 'the VLAN lab has no switch namespace');
    // The LAN's own NIC goes (its veth peer in the LAN host with it); the LAN joins the trunk untagged.
    await ipIn(lab.ns.router, ['link', 'del', 'dev', LAN.routerIf]);
    await ipIn(sw, ['link', 'add', 'name', LAN_PORT, 'type', 'veth', 'peer', 'name', LAN.hostIf, 'netns', lab.ns.lan]);
    await batch(sw, [
      `link add name ${LAN_BRIDGE} type bridge`,
      `link set trunk master ${LAN_BRIDGE}`, // tagged frames still reach trunk.101/.102 (VLAN devices see them first)
      `link set ${LAN_PORT} master ${LAN_BRIDGE}`,
      `link set ${LAN_PORT} up`,
      `link set ${LAN_BRIDGE} up`,
    ]);
    await batch(lab.ns.lan, [
      `link set ${LAN.hostIf} up`,
      `addr add ${LAN.hostAddress}/${LAN.prefixlen} dev ${LAN.hostIf}`,
      `route add default via ${LAN.routerAddress}`,
    ]);
    await batch(lab.ns.router, [`addr add ${LAN.routerAddress}/${LAN.prefixlen} dev ${TRUNK_IF}`]);
    const info: LabInfo = { ...lab, lan: { ...lab.lan, interface: TRUNK_IF } };
    await fs.writeFile(info.configPath, renderLabConfig(info));
    await fs.writeFile(path.join(info.stateDir, 'lab.json'), JSON.stringify(info, null, 2) + '\n');
    return info;
  } catch (err) {
    await labDown(prefix).catch(() => undefined);
    throw err;
  }
}

async function batch(ns: string, commands: string[]): Promise<void> {
  await ipIn(ns, ['-batch', '-'], { input: commands.join('\n') + '\n' });
}
