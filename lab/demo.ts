// `npm run demo`: builds the lab, shows split access failing without uplinkd and
// working with it, balances LAN flows 1:3 over both uplinks, then runs the daemon
// and lets the DHCP provider renumber (new address, new gateway) while the daemon
// follows, then runs it with health monitoring through a live failover and recovery
// (isp1's provider loses its upstream while the link stays up), and tears the lab
// down again (also on Ctrl-C or failure). Needs root.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { daemonConfig, startDaemon, stopDaemon, type RunningDaemon } from './daemon';
import { globalAddress, startDhcpClient } from './dhcp';
import { ipIn, sleep, waitFor } from './exec';
import { blackholeUpstream, restoreUpstream } from './faults';
import { addSecondTarget, defaultMembers, healthDaemonConfig, labTargets, lanFlows, waitForDefault, waitForVerdict } from './health';
import { routesOfTable, rules, uplinkd } from './inspect';
import { labDown, labUp } from './lab';
import { dhclient, renumberProvider } from './renumber';
import { PROVIDERS, type LabInfo } from './topology';
import { flowsPerUplink, ping, startTcpEcho, tcpProbe, tcpTally } from './traffic';

const PREFIX = 'uldemo-';
const PORT = 8080;
const FLOWS = 200;
/** isp2's gateway after the renumbering. */
const ISP2_NEW_GATEWAY = '203.0.113.254';

function step(title: string): void {
  console.log(`\n== ${title}`);
}

async function showUplinkd(lab: LabInfo, args: string[]): Promise<void> {
  console.log(`$ ip netns exec ${lab.ns.router} uplinkd ${args.join(' ')}`);
  const r = await uplinkd(lab.ns.router, args);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.code !== 0) throw new UplinkdError('lab', `uplinkd ${args[0]} exited with ${r.code}`);
}

async function showReach(lab: LabInfo): Promise<void> {
  for (const u of lab.uplinks) {
    const pinged = await ping(lab.ns.inet, u.address);
    const peer = await tcpProbe(lab.ns.inet, u.address, PORT, 1500);
    console.log(`  ${u.name} ${u.address.padEnd(15)} ping ${pinged ? 'ok  ' : 'FAIL'}  tcp ${peer ? `ok (router saw ${peer})` : 'FAIL'}`);
  }
}

async function demo(): Promise<void> {
  step(`lab up (prefix ${PREFIX})`);
  await labDown(PREFIX);
  const lab = await labUp({ prefix: PREFIX });
  for (const u of lab.uplinks)
    console.log(`  ${u.name}: ${u.interface} ${u.mode} ${u.address}/${u.prefixlen} gateway ${u.gateway}`);
  console.log(`  LAN ${lab.lan.network} on ${lab.lan.interface}; internet host ${lab.internetHost}; config ${lab.configPath}`);
  await startTcpEcho(lab.ns.router, PORT);
  await startTcpEcho(lab.ns.inet, PORT);

  step('from the internet host to each uplink address, without uplinkd');
  await showReach(lab);

  step('plan');
  await showUplinkd(lab, ['plan', '-c', lab.configPath]);
  step('apply');
  await showUplinkd(lab, ['apply', '-c', lab.configPath]);
  step('status');
  await showUplinkd(lab, ['status', '-c', lab.configPath]);

  step('from the internet host to each uplink address, with uplinkd');
  await showReach(lab);

  step(`${FLOWS} TCP flows from the LAN host to the internet host (weights isp1 1, isp2 3)`);
  const tally = await tcpTally(lab.ns.lan, lab.internetHost, PORT, { count: FLOWS, concurrency: 20 });
  for (const [name, n] of Object.entries(flowsPerUplink(tally, lab.uplinks)))
    console.log(`  ${name.padEnd(15)} ${String(n).padStart(4)} flows  ${'#'.repeat(Math.round((n / FLOWS) * 50))}`);
  if (tally.failed > 0) console.log(`  failed: ${tally.failed} ${JSON.stringify(tally.errors)}`);

  step('table names are registered for iproute2');
  console.log(`$ ip netns exec ${lab.ns.router} ip route show table isp2`);
  process.stdout.write((await ipIn(lab.ns.router, ['route', 'show', 'table', 'isp2'])).stdout);

  step('down');
  await showUplinkd(lab, ['down', '-c', lab.configPath]);

  await daemonPart(lab);
}

/** The daemon adopts the lab, then follows isp2 renumbering its customer (new address and gateway). */
async function daemonPart(lab: LabInfo): Promise<void> {
  step('uplinkd run (the daemon) in the router; its log, one line per change:');
  const socket = path.join(lab.stateDir, 'control.sock');
  const config = path.join(lab.stateDir, 'daemon.yaml');
  await fs.writeFile(config, daemonConfig(lab, socket));
  daemon = await startDaemon(lab.ns.router, config, (line) => console.log(`  | ${line}`));
  await showUplinkd(lab, ['status', '-c', config]);

  step('isp2 renumbers: its DHCP server now hands out 203.0.113.200-210 behind gateway 203.0.113.254');
  const old = (await globalAddress(lab.ns.router, 'if2'))!;
  await dhclient(lab, 'if2', ['-r']);
  const isp2 = PROVIDERS.find((p) => p.name === 'isp2')!;
  await renumberProvider(lab, isp2, { gateway: ISP2_NEW_GATEWAY, range: ['203.0.113.200', '203.0.113.210'] });
  const fresh = await startDhcpClient(lab.ns.router, 'dhclient', 'if2', lab.stateDir);
  console.log(`  dhclient: ${old} -> ${fresh}`);
  await waitFor('the rule for the new address', async () => ((await rules(lab.ns.router)).some((r) => r.src === fresh) ? true : undefined), 10_000, 20);
  await waitFor('table isp2 to use the new gateway', async () => {
    const def = (await routesOfTable(lab.ns.router, 1002)).find((r) => r.dst === 'default');
    return def?.gateway === ISP2_NEW_GATEWAY ? true : undefined;
  }, 10_000, 20);
  await showUplinkd(lab, ['status', '-c', config]);
  console.log(`$ ip netns exec ${lab.ns.router} ip rule`);
  process.stdout.write((await ipIn(lab.ns.router, ['rule'])).stdout);

  step('from the internet host to each uplink address, after the renumbering');
  await showReach({ ...lab, uplinks: lab.uplinks.map((u) => (u.name === 'isp2' ? { ...u, address: fresh } : u)) });

  step('stop the daemon (routing stays) and remove what it made');
  await stopDaemon(daemon, 'SIGTERM');
  daemon = undefined;
  await showUplinkd(lab, ['down', '-c', config]);

  await healthPart({ ...lab, uplinks: lab.uplinks.map((u) => (u.name === 'isp2' ? { ...u, address: fresh, gateway: ISP2_NEW_GATEWAY } : u)) });
}

/** The daemon's log lines the failover part shows (the start-up's route and rule additions are left out). */
const HEALTH_LOG = /event=(start|ready|health|uplink|conntrack_cleared|hook\w*) |event=apply change="ip nexthop \w+ id 1000 /;

/** `uplinkd status` up to its recent events (the log lines shown above are those events). */
async function showStatusHead(lab: LabInfo, config: string): Promise<void> {
  console.log(`$ ip netns exec ${lab.ns.router} uplinkd status -c ${config}`);
  const r = await uplinkd(lab.ns.router, ['status', '-c', config]);
  if (r.code !== 0) throw new UplinkdError('lab', `uplinkd status exited with ${r.code}: ${r.stderr}`);
  const head = r.stdout.split('\nrecent events:')[0].trimEnd();
  console.log(`${head}\n(recent events: see the log lines above)`);
}

async function showFlows(lab: LabInfo, count: number): Promise<Record<string, number>> {
  const f = await lanFlows(lab, count);
  for (const [name, n] of Object.entries(f.perUplink))
    console.log(`  ${name.padEnd(15)} ${String(n).padStart(4)} flows  ${'#'.repeat(Math.round((n / count) * 50))}`);
  if (f.failed > 0) console.log(`  failed: ${f.failed}`);
  return f.perUplink;
}

/** uplinkd run with monitoring: isp1's provider loses its upstream (link up), the default moves to isp2, and back. */
async function healthPart(lab: LabInfo): Promise<void> {
  step(`uplinkd run with health monitoring: ICMP probes to ${labTargets(lab).join(' and ')} through each uplink, default settings`);
  await addSecondTarget(lab);
  const socket = path.join(lab.stateDir, 'control.sock');
  const config = path.join(lab.stateDir, 'health.yaml');
  await fs.writeFile(config, healthDaemonConfig(lab, socket));
  console.log(`  (config ${config}: each uplink has  monitor: {targets: [${labTargets(lab).join(', ')}]})`);
  const started = Date.now();
  const d = await startDaemon(lab.ns.router, config, (line) => {
    if (HEALTH_LOG.test(line)) console.log(`  | +${((Date.now() - started) / 1000).toFixed(3)}s ${line}`);
  });
  daemon = d;
  await waitForVerdict(socket, 'isp1', 'up', 10_000);
  await waitForVerdict(socket, 'isp2', 'up', 10_000);
  await waitForDefault(lab, ['isp1', 'isp2'], 10_000);
  await sleep(2_000); // a few rounds of RTT and jitter in the window
  await showStatusHead(lab, config);
  step(`${FLOWS / 2} TCP flows from the LAN host, both uplinks healthy`);
  await showFlows(lab, FLOWS / 2);

  step("isp1's provider loses its upstream: a blackhole route in its namespace (the router's link, address and gateway stay up)");
  const t0 = Date.now();
  const mark = d.lines.length;
  await blackholeUpstream(lab, 'isp1');
  await waitForVerdict(socket, 'isp1', 'down', 15_000);
  await waitForDefault(lab, ['isp2'], 15_000);
  await waitFor('the conntrack clear', async () => (d.lines.slice(mark).some((l) => /event=conntrack_cleared/.test(l)) ? true : undefined), 5_000, 20);
  console.log(`  -> isp1 down and out of the default ${Date.now() - t0} ms after the fault (as seen by this demo's polling)`);
  await showStatusHead(lab, config);
  step(`${FLOWS / 2} TCP flows from the LAN host while isp1 is down`);
  await showFlows(lab, FLOWS / 2);

  step("isp1's upstream comes back");
  const t1 = Date.now();
  await restoreUpstream(lab, 'isp1');
  await waitForVerdict(socket, 'isp1', 'up', 30_000);
  await waitForDefault(lab, ['isp1', 'isp2'], 30_000);
  console.log(`  -> isp1 up and back in the default ${Date.now() - t1} ms after the repair (${(await defaultMembers(lab)).join(', ')})`);
  await showStatusHead(lab, config);
  // New flows reach isp1 once the resilient group's idle buckets have moved back (its idle timer).
  step(`${FLOWS / 2} TCP flows from the LAN host after the recovery`);
  const deadline = Date.now() + 60_000;
  while ((await showFlows(lab, FLOWS / 2)).isp1 === 0 && Date.now() < deadline) {
    console.log('  (no flow on isp1 yet: the resilient group moves buckets back once they are idle; again in 2 s)');
    await sleep(2_000);
  }

  step('stop the daemon and remove what it made');
  await stopDaemon(d, 'SIGTERM');
  daemon = undefined;
  await showUplinkd(lab, ['down', '-c', config]);
}

let daemon: RunningDaemon | undefined;

async function cleanup(): Promise<void> {
  if (daemon) await stopDaemon(daemon, 'SIGKILL');
  step('lab down');
  await labDown(PREFIX);
}

process.once('SIGINT', () => {
  void cleanup().finally(() => process.exit(130));
});

demo().then(
  () => cleanup(),
  async (err: unknown) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    await cleanup();
    process.exitCode = 1;
  },
);
