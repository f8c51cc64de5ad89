// A full Linux kernel for the lab: Debian's user-mode Linux (package user-mode-linux) boots as an
// ordinary process with the host's filesystem as its root, mounted READ-ONLY (hostfs); the guest's
// init builds a tmpfs overlay over it, chroots into that and runs one command. Everything the
// command writes lands in the guest's tmpfs and is gone at power-off, except in one writable window
// (a host temp directory, mounted again read-write) that carries the exit status and the output back.
// See docs/guest-lab.md.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UplinkdError } from '../src/errors';

/** The UML kernel of Debian's user-mode-linux package and its module tree (one dir per kernel release). */
export const UML_BINARY = '/usr/bin/linux.uml';
export const UML_MODULES = '/usr/lib/uml/modules';
const MODPROBE = '/usr/sbin/modprobe';

/**
 * Modules every lab world may need, loaded before the chroot (autoloading also works, through the
 * same wrapper, but explicit loading fails early and clearly). Names as in the module tree.
 */
export const LAB_MODULES = [
  'overlay', // the tmpfs overlay over the read-only host
  'veth', '8021q', 'bridge', 'dummy', 'macvlan',
  'sch_netem', 'sch_tbf', 'sch_htb', 'sch_ingress', 'cls_flower', 'cls_u32', 'act_nat', 'act_mirred', 'ifb',
  'ppp_generic', 'pppoe', 'pppox', 'ppp_async', 'ppp_synctty', 'tun',
  // legacy iptables: the guest kernel's nf_tables has no ip/inet family (docs/guest-lab.md)
  'ip_tables', 'iptable_filter', 'iptable_nat', 'iptable_mangle', 'nf_nat', 'nf_conntrack', 'nf_conntrack_netlink',
  'xt_MASQUERADE', 'xt_conntrack', 'xt_addrtype', 'xt_mark', 'xt_connmark', 'xt_statistic', 'xt_comment', 'xt_hashlimit',
];

/** Why the guest cannot run here (the message names the package), or undefined when it can. */
export function guestMissing(): string | undefined {
  if (!existsSync(UML_BINARY))
    return `user-mode Linux is not installed (${UML_BINARY} is missing): install the Debian package user-mode-linux (scripts/setup.sh does)`;
  if (!existsSync(MODPROBE)) return `${MODPROBE} is missing: install the Debian package kmod`;
  if (umlRelease() === undefined) return `no module tree under ${UML_MODULES}: reinstall the Debian package user-mode-linux`;
  return undefined;
}

/** The kernel release of the installed UML modules (e.g. 6.1.176), or undefined. */
function umlRelease(): string | undefined {
  try {
    const dirs = readdirSync(UML_MODULES).filter((d) => existsSync(path.join(UML_MODULES, d, 'modules.dep')));
    return dirs.sort().pop();
  } catch {
    return undefined;
  }
}

export interface GuestOptions {
  /** argv run inside the guest (in the chroot, as root, stdout and stderr joined). */
  command: string[];
  /** Working directory inside the guest; default this process's cwd (the host's files are visible read-only). */
  cwd?: string;
  /** Environment of the command, on top of PATH, HOME and LANG. */
  env?: Record<string, string>;
  /** Modules loaded before the chroot; default LAB_MODULES. */
  modules?: string[];
  /** Guest memory (UML `mem=`); default 1024M (a sparse file: only what is used costs host memory). */
  memory?: string;
  /** The guest is killed after this many ms; default 10 min. */
  timeoutMs?: number;
  /** The console stays on this process's terminal (stdin included): for a person, not for tests. */
  interactive?: boolean;
  /** Each chunk of console output as it arrives (not called when interactive). */
  onOutput?: (chunk: string) => void;
}

export interface GuestResult {
  /** The command's exit status; null when it did not finish (timeout, guest crash). */
  code: number | null;
  /** The command's output (stdout and stderr), from the writable window. */
  output: string;
  /** Everything on the guest's console: kernel messages, init's lines, the command's output. */
  console: string;
  timedOut: boolean;
  /** ms from starting the kernel to the command's start, and the command's own run time (-1: not seen). */
  bootMs: number;
  runMs: number;
  totalMs: number;
  /** The UML process's own exit code or signal. */
  umlExit: { code: number | null; signal: NodeJS.Signals | null };
}

/** init writes these on the console; the runner reads them for timing. */
const START_MARK = 'uplinkd-guest: start';
const END_MARK = 'uplinkd-guest: end';

/** Single-quotes one word for /bin/sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The guest's PID 1 (runs on the read-only host root): modules through the wrapper, the tmpfs
 * overlay and the chroot's mounts, then the chroot runs inner.sh. `dir` is the host temp dir of
 * this run. Each program started costs about half a second in the guest (forks are slow in UML),
 * so the mounts are one `mount -a` of fstab() and the rest are shell builtins.
 */
export function initScript(dir: string, modules: readonly string[]): string {
  const q = shellQuote;
  return `#!/bin/sh
# PID 1 of an uplinkd lab guest (generated by lab/guest.ts). The host's / is mounted read-only.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
fail() { echo "uplinkd-guest: $*"; poweroff -f; }
mount -t proc proc /proc || fail "no /proc"
# Autoloading runs this wrapper too, always in this (real) root: it lives on a host path.
echo ${q(path.join(dir, 'modprobe'))} > /proc/sys/kernel/modprobe
${q(path.join(dir, 'modprobe'))} -a ${modules.map(q).join(' ')} || fail "modprobe failed"
mount -t tmpfs -o mode=0755 uplinkd-guest /mnt || fail "no tmpfs on /mnt"
mkdir /mnt/upper /mnt/work /mnt/root
mount -a -T ${q(path.join(dir, 'fstab'))} || fail "mounts failed"
echo uplinkd-guest > /proc/sys/kernel/hostname
exec chroot /mnt/root /bin/sh ${q(path.join(dir, 'inner.sh'))}
`;
}

/**
 * The chroot's mounts, in order: the overlay (host read-only below, tmpfs above), the kernel's
 * file systems, a fresh /run (the host's netns files and daemons' sockets must not show through)
 * and the one writable window onto the host, at the same path as on the host.
 */
export function fstab(dir: string): string {
  const win = path.join(dir, 'win');
  const r = '/mnt/root';
  const line = (spec: string, file: string, type: string, opts: string) => `${spec} ${file.replace(/ /g, '\\040')} ${type} ${opts} 0 0`;
  return [
    line('overlay', r, 'overlay', 'lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work'),
    line('proc', `${r}/proc`, 'proc', 'defaults'),
    line('sysfs', `${r}/sys`, 'sysfs', 'defaults'),
    line('devtmpfs', `${r}/dev`, 'devtmpfs', 'defaults'),
    line('devpts', `${r}/dev/pts`, 'devpts', 'ptmxmode=0666,mode=0620,X-mount.mkdir'),
    line('tmpfs', `${r}/run`, 'tmpfs', 'mode=0755'),
    line('hostfs', `${r}${win}`, 'hostfs', win),
    '',
  ].join('\n');
}

/** The script run in the chroot: the command, its status and output into the window, power-off. */
export function innerScript(dir: string, cwd: string, command: readonly string[], env: Record<string, string>, interactive: boolean): string {
  const q = shellQuote;
  const win = path.join(dir, 'win');
  const exports = Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`);
  const run = interactive
    ? `${command.map(q).join(' ')}\necho $? > ${q(path.join(win, 'status'))}`
    : `{ ${command.map(q).join(' ')}; echo $? > ${q(path.join(win, 'status'))}; } 2>&1 | tee ${q(path.join(win, 'output.log'))}`;
  return `#!/bin/sh
# Runs in the guest's overlay root (generated by lab/guest.ts).
${exports.join('\n')}
mkdir /run/lock
ln -s /proc/self/fd /dev/fd
cd ${q(cwd)} || { echo "uplinkd-guest: no directory ${cwd}"; poweroff -f; }
echo "${START_MARK}"
${run}
echo "${END_MARK}"
poweroff -f
`;
}

/**
 * Boots the guest, runs `opts.command` inside it and powers it off. Resolves with the command's
 * status and output also when the command failed; throws only when the guest cannot run at all.
 * The temp dir (init, wrapper, UML's uml_dir, the window) is removed in every case, and on a
 * timeout the guest's process group is killed.
 */
export async function runInGuest(opts: GuestOptions): Promise<GuestResult> {
  const missing = guestMissing();
  if (missing) throw new UplinkdError('lab', missing);
  const release = umlRelease()!;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'uplinkd-guest-'));
  try {
    await fs.mkdir(path.join(dir, 'win'));
    await fs.mkdir(path.join(dir, 'uml'));
    // modprobe -d DIR looks in DIR/lib/modules/<release>; the host has no such tree for the UML kernel.
    await fs.mkdir(path.join(dir, 'mod', 'lib', 'modules'), { recursive: true });
    await fs.symlink(path.join(UML_MODULES, release), path.join(dir, 'mod', 'lib', 'modules', release));
    await fs.writeFile(path.join(dir, 'modprobe'), `#!/bin/sh\nexec ${MODPROBE} -d ${shellQuote(path.join(dir, 'mod'))} "$@"\n`, { mode: 0o755 });
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      ...(opts.interactive ? { TERM: process.env.TERM ?? 'vt100' } : {}),
      // where the command may leave files for the host (gone with the temp dir unless copied)
      UPLINKD_GUEST_WINDOW: path.join(dir, 'win'),
      ...opts.env,
    };
    await fs.writeFile(path.join(dir, 'init'), initScript(dir, opts.modules ?? LAB_MODULES), { mode: 0o755 });
    await fs.writeFile(path.join(dir, 'fstab'), fstab(dir));
    await fs.writeFile(path.join(dir, 'inner.sh'), innerScript(dir, opts.cwd ?? process.cwd(), opts.command, env, opts.interactive ?? false), { mode: 0o755 });
    return await boot(dir, opts);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function boot(dir: string, opts: GuestOptions): Promise<GuestResult> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const args = [
    'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro',
    `mem=${opts.memory ?? '1024M'}`,
    'quiet',
    // Debian's UML kernel sets up 256 legacy BSD ptys at boot: 5-8 s of a 10 s boot. Unix98 ptys stay.
    'pty.legacy_count=0',
    'con=null', 'con0=fd:0,fd:1',
    `uml_dir=${path.join(dir, 'uml')}`,
    `init=${path.join(dir, 'init')}`,
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group: UML runs a host process per guest address space; a timeout kills them all.
    const child = spawn(UML_BINARY, args, {
      detached: true,
      stdio: opts.interactive ? ['inherit', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
      // UML puts guest memory in TMPDIR (default /dev/shm) as a file it unlinks at once.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TMPDIR: '/dev/shm' },
    });
    let text = '';
    let startAt = -1;
    let endAt = -1;
    let timedOut = false;
    const onChunk = (chunk: string) => {
      text += chunk;
      if (startAt < 0 && text.includes(START_MARK)) startAt = Date.now();
      if (endAt < 0 && text.includes(END_MARK)) endAt = Date.now();
      opts.onOutput?.(chunk);
    };
    child.stdout?.setEncoding('utf8').on('data', onChunk);
    child.stderr?.setEncoding('utf8').on('data', onChunk);
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    // The guest is its own process group: it must not outlive this process, also when a signal ends it.
    const onSignal = (sig: NodeJS.Signals) => {
      killGroup();
      rmSync(dir, { recursive: true, force: true }); // the finally of runInGuest will not run
      process.kill(process.pid, sig);
    };
    const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];
    process.once('exit', killGroup);
    for (const sig of signals) process.once(sig, onSignal);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new UplinkdError('lab', `cannot start ${UML_BINARY}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', killGroup);
      for (const sig of signals) process.off(sig, onSignal);
      killGroup(); // leftovers of a guest that crashed
      void collect(dir).then(({ status, output }) => {
        const now = Date.now();
        resolve({
          code: timedOut ? null : status,
          output,
          console: text.replace(/\r\n/g, '\n'),
          timedOut,
          bootMs: startAt < 0 ? -1 : startAt - started,
          runMs: startAt < 0 || endAt < 0 ? -1 : endAt - startAt,
          totalMs: now - started,
          umlExit: { code, signal },
        });
      }, reject);
    });
  });
}

async function collect(dir: string): Promise<{ status: number | null; output: string }> {
  const read = (name: string) => fs.readFile(path.join(dir, 'win', name), 'utf8').catch(() => undefined);
  const status = await read('status');
  const n = status === undefined ? NaN : Number(status.trim());
  return { status: Number.isInteger(n) ? n : null, output: (await read('output.log')) ?? '' };
}
