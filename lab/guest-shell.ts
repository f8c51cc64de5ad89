// `uplinkd lab up --kernel full`: the lab's worlds inside the full-kernel guest, for a person.
// The guest boots with this terminal as its console, builds the blog world (prefix `ub-`) and the
// PPPoE world (prefix `up-`), prints where they are, and gives a root shell; leaving the shell
// powers the guest off and everything is gone (the host's files are read-only in the guest).
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { runInGuest } from './guest';
import type { LabInfo } from './topology';

export const BLOG_PREFIX = 'ub-';
export const PPPOE_PREFIX = 'up-';

/** Boots the guest on this terminal; resolves with the shell's exit status. */
export async function guestLabShell(): Promise<number> {
  if (!process.stdin.isTTY) throw new UplinkdError('usage', 'lab up --kernel full needs a terminal: it gives you a shell inside the guest');
  const repo = path.resolve(__dirname, '..', '..');
  const worlds = path.join(__dirname, 'guest-shell.js');
  const script = `${JSON.stringify(process.execPath)} ${JSON.stringify(worlds)} --up || echo "building the worlds failed; the shell is yours anyway"
echo "uplinkd: exit the shell to power the guest off"
exec setsid -c -w /bin/bash -i`;
  const r = await runInGuest({ command: ['/bin/sh', '-c', script], cwd: repo, interactive: true, timeoutMs: 24 * 3600_000 });
  return r.code ?? 1;
}

function describeLab(name: string, lab: LabInfo): string {
  const lines = [`${name}: namespaces ${Object.values(lab.ns).join(' ')}`, `  config: ${lab.configPath}`];
  for (const u of lab.uplinks) lines.push(`  ${u.name}: ${u.interface} ${u.address} via ${u.gateway}`);
  lines.push(`  try: ip netns exec ${lab.ns.router} ${path.resolve(__dirname, '..', '..', 'bin', 'uplinkd')} apply -c ${lab.configPath}`);
  return lines.join('\n');
}

/** Inside the guest: build both worlds and print them. */
async function up(): Promise<void> {
  const { blogUp } = await import('./blog');
  const { pppoeUp } = await import('./pppoe');
  console.log('building the blog world (VLANs 101/102 over DHCP) ...');
  console.log(describeLab('blog world', await blogUp(BLOG_PREFIX)));
  console.log('building the PPPoE world (two sessions, same peer) ...');
  console.log(describeLab('PPPoE world', await pppoeUp(PPPOE_PREFIX)));
}

if (require.main === module && process.argv[2] === '--up') {
  up().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
