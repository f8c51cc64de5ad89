import { UplinkdError } from '../errors';

export interface ParsedArgs {
  command: string;
  positional: string[];
  options: Record<string, string | true>;
}

/**
 * Parses `uplinkd <command> [sub] [--flag] [--key value] [-c FILE]`.
 * `valued` names the options that take a value; everything else is a flag.
 */
export function parseArgs(argv: string[], valued: ReadonlySet<string>): ParsedArgs {
  const [command = 'help', ...rest] = argv;
  const positional: string[] = [];
  const options: Record<string, string | true> = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const rawName = eq > 0 ? arg.slice(0, eq) : arg;
    const name = rawName === '-c' ? 'config' : rawName.replace(/^--?/, '');
    if (valued.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : rest[++i];
      if (value === undefined) throw new UplinkdError('usage', `option ${rawName} needs a value`);
      options[name] = value;
    } else {
      if (eq > 0) throw new UplinkdError('usage', `option ${rawName} takes no value`);
      options[name] = true;
    }
  }
  return { command, positional, options };
}
