// Test fixture (run inside a router namespace with `ip netns exec`): runs real probers or a
// real HealthMonitor and prints JSON lines, so tests can check probing through each uplink.
//   node netns-probe.js probe '{"method":"icmp","address":..,"interface":..,"targets":[..],"port":..,"waitMs":..}'
//   node netns-probe.js monitor '<Config JSON>' '{"<uplink>":{"interface":..,"address":..}}'   (until stdin closes)
import type { Config, ProbeMethod } from '../../../src/config/types';
import { HealthMonitor, type UplinkEndpoint } from '../../../src/health/monitor';
import { createProber } from '../../../src/health/probers';

async function probe(args: { method: ProbeMethod; address: string; interface: string; targets: string[]; port?: number; waitMs: number }) {
  const prober = createProber(args.method, { address: args.address, interface: args.interface }, args.port);
  try {
    const replies = await Promise.all(args.targets.map((ip) => prober.probe({ name: ip, ip }, args.waitMs)));
    process.stdout.write(JSON.stringify(replies) + '\n');
  } finally {
    prober.close();
  }
}

function monitor(config: Config, endpoints: Record<string, UplinkEndpoint>) {
  const m = new HealthMonitor(config, (name) => endpoints[name]);
  m.on('change', (c) => process.stdout.write(JSON.stringify({ ...c, at: Date.now() }) + '\n'));
  m.start();
  process.stdin.resume();
  process.stdin.on('end', () => {
    m.stop();
    process.stdin.pause();
  });
}

if (require.main === module) {
  const [mode, a, b] = process.argv.slice(2);
  if (mode === 'probe') {
    probe(JSON.parse(a)).catch((err: Error) => {
      process.stdout.write(JSON.stringify({ error: err.message }) + '\n');
      process.exitCode = 1;
    });
  } else if (mode === 'monitor') {
    monitor(JSON.parse(a) as Config, JSON.parse(b) as Record<string, UplinkEndpoint>);
  } else {
    process.stderr.write('usage: netns-probe.js probe JSON | monitor CONFIG ENDPOINTS\n');
    process.exitCode = 2;
  }
}
