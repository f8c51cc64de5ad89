// `npm run demo`: builds the lab, shows split access failing without uplinkd and
// working with it, balances LAN flows 1:3 over both uplinks, and tears the lab
// down again (also on Ctrl-C or failure). Needs root.
import { UplinkdError } from '../errors';
import { uplinkd } from './inspect';
import { labDown, labUp } from './lab';
import type { LabInfo } from './topology';
import { flowsPerUplink, ping, startTcpEcho, tcpProbe, tcpTally } from './traffic';

const PREFIX = 'uldemo-';
const PORT = 8080;
const FLOWS = 200;

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

  step('down');
  await showUplinkd(lab, ['down', '-c', lab.configPath]);
}

async function cleanup(): Promise<void> {
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
