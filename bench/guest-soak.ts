// The guest soak: issue 10's 5-minute soak on a real path, inside the full-kernel guest (issue 9,
// docs/guest-lab.md). It runs test/guest/netem.guest.ts's soak test alone with
// UPLINKD_GUEST_SOAK_S=300 (`npm test` runs the same test for 2 minutes): isp1 at 300 ms RTT (netem)
// behind targets that rate-limit ICMP to 2/s per source (iptables hashlimit), isp2 at 300 ms RTT
// with 20 % loss per direction (netem), then an outage of isp1 (3 s, or until judged down). The test's assertions still hold
// (a false down fails the run); the numbers are its own `# ` lines.
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';
import { guestMissing, runInGuest } from '../lab/guest';
import type { Benchmark } from './registry';
import { table } from './report';

const REPO = path.resolve(__dirname, '..', '..');
const TEST = path.join(REPO, 'dist', 'test', 'guest', 'netem.guest.js');

export const guestSoakBenchmark: Benchmark = {
  name: 'guest-soak',
  async run({ quick, progress }) {
    const missing = guestMissing();
    if (missing) throw new UplinkdError('usage', `the guest-soak benchmark needs the full-kernel guest: ${missing}`);
    const seconds = quick ? 30 : 300;
    progress(`booting the guest for a ${seconds} s soak (rate-limited targets on isp1, 20 % loss on isp2, 300 ms RTT)`);
    const r = await runInGuest({
      command: [process.execPath, '--test', '--test-reporter=spec', '--test-name-pattern=targets rate-limit ICMP', TEST],
      cwd: REPO,
      env: { UPLINKD_GUEST_SOAK_S: String(seconds) },
      timeoutMs: (seconds + 900) * 1000,
    });
    if (r.code !== 0) throw new UplinkdError('lab', `the guest soak failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}):\n${r.output || r.console}`);
    const lines = [...r.output.matchAll(/^\s*# ((?:rate limit|after an outage).*)$/gm)].map((m) => m[1]);
    if (lines.length !== 2) throw new UplinkdError('lab', `the guest soak printed ${lines.length} result lines, not 2:\n${r.output}`);
    const body = [
      table(['measured in the guest', 'result'], [['soak', lines[0]], ['outage of isp1 (3 s, or until judged down)', lines[1]]]),
      '',
      table(['guest', 'time'], [['boot (kernel start to the command)', `${(r.bootMs / 1000).toFixed(0)} s`], ['command (lab, daemon, soak, outage, clean-up)', `${(r.runMs / 1000).toFixed(0)} s`], ['total', `${(r.totalMs / 1000).toFixed(0)} s`]]),
      '',
      '**Method.** `runInGuest` (lab/guest.ts) boots Debian\'s user-mode Linux with the host read-only under a tmpfs overlay '
        + `and runs the soak test of test/guest/netem.guest.ts alone with UPLINKD_GUEST_SOAK_S=${seconds}: the plain lab (legacy iptables, pinning off), `
        + '`uplinkd run` with default monitoring of 192.0.2.80 and 192.0.2.53 on both uplinks. isp1\'s provider delays each direction 150 ± 10 ms '
        + '(netem); the internet host drops echo requests from isp1\'s network above 2/s per source and target (xt_hashlimit, burst 2; a 10/s ping '
        + 'proves it drops first); isp2\'s provider delays 150 ± 10 ms and loses 20 % per direction (netem on both of its interfaces). '
        + 'The daemon\'s status is polled every second (a `down` fails the run); then isp1\'s upstream is blackholed for 3 s, or until the daemon '
        + 'judges it down if that takes longer, and the time from the repair to the daemon\'s `from=down` line (and to the default holding isp1 again, '
        + 'read with `ip nexthop` forks) is measured. The guest\'s times scale with the host\'s load (docs/guest-lab.md).',
    ];
    return { name: 'guest-soak', title: 'Health 4. In the full-kernel guest: 5-minute soak under rate limiting and 20 % loss at 300 ms RTT', body: body.join('\n') };
  },
};
