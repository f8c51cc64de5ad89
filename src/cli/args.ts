import { UplinkdError } from '../errors';

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
 * Parses the arguments after the command word (`rest`) against `spec`: `--name`, `--name VALUE`,
 * `--name=VALUE`, `-c FILE`; `--` ends the options. `command` names the command in errors.
 * Errors: UplinkdError('usage') naming the option or argument and the command, with its usage line,
 * for an option the command does not take, a missing or unexpected value, or a stray argument.
 */
export function parseCommandArgs(command: string, rest: readonly string[], spec: CommandSpec): ParsedArgs {
  const valued = new Set(spec.valued ?? []);
  const flags = new Set(spec.flags ?? []);
  const positional: string[] = [];
  const options: Record<string, string | true> = {};
  const usageError = (what: string, hint = '') => new UplinkdError('usage', `${what} for '${command}'${hint}\nusage: ${spec.usage}`);
  let optionsEnd = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (optionsEnd || !arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    if (arg === '--') {
      optionsEnd = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const rawName = eq > 0 ? arg.slice(0, eq) : arg;
    // Long options are `--name`; the one short option is -c.
    const name = rawName === '-c' ? 'config' : rawName.startsWith('--') ? rawName.slice(2) : undefined;
    if (name !== undefined && valued.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : rest[++i];
      if (value === undefined) throw usageError(`option ${rawName} needs a value`);
      options[name] = value;
    } else if (name !== undefined && flags.has(name)) {
      if (eq > 0) throw usageError(`option ${rawName} takes no value`);
      options[name] = true;
    } else {
      throw usageError(`unknown option '${rawName}'`);
    }
  }
  const max = spec.positional ?? 0;
  if (positional.length > max) {
    const stray = positional[max]!;
    // The common slip: the configuration file given without -c.
    const hint = valued.has('config') && max === 0 && /\.ya?ml$|\//.test(stray) ? `; the configuration file is given with -c ${stray}` : '';
    throw usageError(`unexpected argument '${stray}'`, hint);
  }
  return { command, positional, options };
}
