// A real browser for the lab: Debian's chromium, headless, run inside a namespace (`ip netns exec`)
// so it reaches what listens on that namespace's loopback. Each call gets a throwaway HOME and
// profile directory, removed afterwards. --no-sandbox: the lab runs as root, where chromium's
// sandbox refuses to start.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inNs } from './exec';

const CHROMIUM = 'chromium';

async function chromium(ns: string, args: string[], timeoutMs: number): Promise<string> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'uplinkd-chromium-'));
  try {
    const r = await inNs(ns, CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
      '--disable-extensions', '--disable-background-networking', '--disable-dev-shm-usage',
      `--user-data-dir=${path.join(home, 'profile')}`, ...args,
    ], { timeoutMs, env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') } });
    return r.stdout;
  } finally {
    await fs.rm(home, { recursive: true, force: true });
  }
}

/** The DOM of `url` after it loaded, serialized (chromium --dump-dom). Throws UplinkdError('lab') on failure. */
export function dumpDom(ns: string, url: string, timeoutMs = 60_000): Promise<string> {
  return chromium(ns, ['--dump-dom', url], timeoutMs);
}

/** A PNG of `url`'s first `width` x `height` CSS pixels written to `file` (chromium --screenshot). */
export async function screenshot(ns: string, url: string, file: string, width: number, height: number, timeoutMs = 60_000): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await chromium(ns, [`--screenshot=${file}`, `--window-size=${width},${height}`, '--hide-scrollbars', url], timeoutMs);
}
