// A LabInfo as labUp would return it, for unit tests of what is derived from it (no namespaces).
import type { LabInfo } from './topology';

/**
 * The default lab's LabInfo with prefix `ux-` (isp1 static, isp2 DHCP on `isp2Interface`), built without namespaces.
 */
export function sampleLab(isp2Interface = 'if2'): LabInfo {
  return {
    prefix: 'ux-',
    vlan: false,
    dhcpClient: 'dhclient',
    stateDir: '/run/uplinkd-lab/ux-',
    configPath: '/run/uplinkd-lab/ux-/uplinkd.yaml',
    leaseGlobs: ['/run/uplinkd-lab/ux-/dhclient.*.leases'],
    ns: { lan: 'ux-lan', router: 'ux-router', isp1: 'ux-isp1', isp2: 'ux-isp2', inet: 'ux-inet' },
    lan: { interface: 'if0', network: '192.168.10.0/24', routerAddress: '192.168.10.1', hostAddress: '192.168.10.10' },
    uplinks: [
      { name: 'isp1', interface: 'if1', mode: 'static', address: '198.51.100.2', prefixlen: 24, network: '198.51.100.0/24', gateway: '198.51.100.1', providerNs: 'ux-isp1' },
      { name: 'isp2', interface: isp2Interface, mode: 'dhcp', address: '203.0.113.120', prefixlen: 24, network: '203.0.113.0/24', gateway: '203.0.113.1', providerNs: 'ux-isp2' },
    ],
    internetHost: '192.0.2.80',
  };
}
