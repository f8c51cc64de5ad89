import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UplinkdError } from '../errors';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  command: string;
  positional: string[];
  options: Record<string, string | true>;
}

/** What one command accepts on its command line; anything else is a usage error. */
export interface CommandSpec {
  /** The command's line of the usage text, e.g. `uplinkd plan [-c FILE] [--format text|ip|json]`. */
  usage: string;
  /** Long option names that take a value (`--name VALUE`, `--name=VALUE`); `config` is also `-c`. */
  valued?: readonly string[];
  /** Long option names that are flags. */
  flags?: readonly string[];
  /** How many positional arguments the command takes at most (default 0). */
  positional?: number;
}

/**
 * The option as the user typed it (without `=VALUE`) that parseArgs's `message` names: '--frob',
 * '-json' for its '-j', '-c' or '--config' for "'-c, --config <value>'".
 */
function typedOption(message: string, rest: readonly string[]): string {
  const named = [...message.matchAll(/--?[A-Za-z][\w-]*/g)].map((m) => m[0]);
  const end = rest.indexOf('--');
  const typed = (end < 0 ? rest : rest.slice(0, end)).map((a) => a.split('=')[0]!);
  return typed.find((a) => named.includes(a)) ?? typed.find((a) => named.some((n) => a.startsWith(n))) ?? named[0] ?? '';
}

/**
 * Parses the arguments after the command word (`rest`) against `spec` with node:util's parseArgs:
 * `--name`, `--name VALUE`, `--name=VALUE`, `-c FILE`; `--` ends the options. `command` names the
 * command in errors. Errors: UplinkdError('usage') naming the option or argument and the command,
 * with its usage line, for an option the command does not take, a missing or unexpected value, or a
 * stray argument.
 */
export function parseCommandArgs(command: string, rest: readonly string[], spec: CommandSpec): ParsedArgs {
  const usageError = (what: string, hint = '') => new UplinkdError('usage', `${what} for '${command}'${hint}\nusage: ${spec.usage}`);
  const options: ParseArgsOptionsConfig = {};
  for (const name of spec.valued ?? []) options[name] = { type: 'string', ...(name === 'config' ? { short: 'c' } : {}) };
  for (const name of spec.flags ?? []) options[name] = { type: 'boolean' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
  } catch (e) {
    const { code, message } = e as { code?: string; message: string };
    const typed = typedOption(message, rest);
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw usageError(`unknown option '${typed}'`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (/does not take an argument/.test(message)) throw usageError(`option ${typed} takes no value`);
      if (/ambiguous/.test(message)) throw usageError(`option ${typed} needs a value`, `; a value that starts with '-' is written ${typed}=VALUE`);
      throw usageError(`option ${typed} needs a value`);
    }
    throw e;
  }
  const values: Record<string, string | true> = {};
  for (const [name, value] of Object.entries(parsed.values)) if (typeof value === 'string' || value === true) values[name] = value;
  const positional = parsed.positionals;
  const max = spec.positional ?? 0;
  if (positional.length > max) {
    const stray = positional[max]!;
    // The common slip: the configuration file given without -c.
    const hint = spec.valued?.includes('config') && max === 0 && /\.ya?ml$|\//.test(stray) ? `; the configuration file is given with -c ${stray}` : '';
    throw usageError(`unexpected argument '${stray}'`, hint);
  }
  return { command, positional, options: values };
}
