// nftables commands in this process through libnftables (the library `nft` is built on), by the small
// addon src/netlink/native/nft.c, instead of one `nft` process per read or change: a command costs
// about 0.2 ms instead of a process start (milliseconds; docs/benchmarks.md section 2). The addon
// dlopen()s libnftables.so.1 itself, so nothing here needs libnftables at build time; without either,
// src/nft/nft.ts runs the nft program as before.
import fs from 'node:fs';
import path from 'node:path';
import type { NftResult, NftRunner } from './nft';

interface NftAddon {
  /** dlopen()s `file` once (later calls keep the first outcome): '' when it has every function the addon uses, else dlerror()'s text. */
  nftLoad(file: string): string;
  /** Runs `command` (nft's input syntax, one or more lines) on the libuv thread pool; code 0 or 1 as nft(8) exits. Rejects when no context can be made. */
  nftRun(command: string, json: boolean): Promise<{ code: number; stdout: string; stderr: string }>;
}

const ADDON_FILE = 'uplinkd_nft.node';
/** The library's soname (Debian package libnftables1); $UPLINKD_LIBNFTABLES names another file (a path, or /nonexistent to run the nft program instead). */
const LIBRARY = 'libnftables.so.1';

/** Where the addon may be: the checkout's build (dist/src/nft -> src/netlink/native/build) or the package's (scripts/package.sh). */
function candidates(dir = __dirname): string[] {
  return [
    path.resolve(dir, '../../../src/netlink/native/build/Release', ADDON_FILE),
    path.resolve(dir, '../netlink/native/build/Release', ADDON_FILE),
  ];
}

/** What the nft(8) command line `args` (with `input` on stdin) asks for, as one libnftables command. */
export interface NftCommand {
  /** nft's input: the words of the command line joined by spaces (as nft(8) itself joins them), or the script of `-f -`. */
  command: string;
  /** `-j` / `--json`: NFT_CTX_OUTPUT_JSON (libnftables-json(5)). */
  json: boolean;
}

/**
 * Translates an nft(8) command line into an NftCommand: options `-j`/`--json` and `-f -` (the script
 * is `input`), then the command's words. Undefined for any other option (`-f FILE`, `-c`, `-a`, ...),
 * which the library runner does not carry.
 */
export function nftCommand(args: readonly string[], input?: string): NftCommand | undefined {
  let json = false;
  let i = 0;
  for (; i < args.length && args[i]!.startsWith('-'); i++) {
    const a = args[i]!;
    if (a === '-j' || a === '--json') json = true;
    else if ((a === '-f' || a === '--file') && args[i + 1] === '-' && i + 2 === args.length) return { command: input ?? '', json };
    else return undefined;
  }
  return { command: args.slice(i).join(' '), json };
}

function failed(code: string, message: string): NftResult {
  return { code: null, stdout: '', stderr: '', error: Object.assign(new Error(message), { code }) };
}

/**
 * An NftRunner over the addon: commands run one at a time (a libnftables context is not thread-safe;
 * the addon also holds a lock), off the event loop. Never rejects: an option it does not carry is
 * `error` EINVAL; a command unanswered after `timeoutMs` (default 10 s, as the nft process gets) is
 * `error` ETIMEDOUT (a library call cannot be killed: later commands wait behind it, each with its own
 * timeout from when it was asked for); a context that cannot be made is `error` with the addon's text.
 */
export function libraryRunner(addon: Pick<NftAddon, 'nftRun'>, timeoutMs = 10_000): NftRunner {
  let tail: Promise<unknown> = Promise.resolve();
  return (args, input) => {
    const cmd = nftCommand(args, input);
    if (!cmd) return Promise.resolve(failed('EINVAL', `libnftables runner: unsupported nft options in: nft ${args.join(' ')}`));
    const done = tail.then(() => addon.nftRun(cmd.command, cmd.json));
    tail = done.catch(() => undefined);
    return new Promise<NftResult>((resolve) => {
      const timer = setTimeout(() => resolve(failed('ETIMEDOUT', `libnftables did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
      done.then(
        (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        (e: Error) => {
          clearTimeout(timer);
          resolve(failed('EIO', `libnftables: ${e.message}`));
        },
      );
    });
  };
}

/**
 * The libnftables runner, or why it cannot be had: the addon is not built, does not load, or
 * `library` (default $UPLINKD_LIBNFTABLES, else libnftables.so.1 of Debian package libnftables1) is
 * missing or lacks a function. `files`: where to look for the addon (tests). The addon loads one
 * library per process: src/nft/nft.ts calls this once (runNft).
 */
export function loadLibnftables(files: readonly string[] = candidates(), library = process.env.UPLINKD_LIBNFTABLES || LIBRARY): { run: NftRunner } | { failure: string } {
  const file = files.find((p) => fs.existsSync(p));
  if (!file) return { failure: `${ADDON_FILE} is not built (npm run build:native)` };
  let addon: NftAddon;
  let why: string;
  try {
    addon = require(file) as NftAddon;
    why = addon.nftLoad(library);
  } catch (e) {
    return { failure: `${ADDON_FILE}: ${(e as Error).message}` };
  }
  return why ? { failure: `libnftables: ${why}` } : { run: libraryRunner(addon) };
}
