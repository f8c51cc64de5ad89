/** The one error type uplinkd throws on purpose. `code` is stable for callers and tests. */
export type ErrorCode =
  | 'config'      // invalid configuration: file, line, column, field
  | 'kernel'      // the kernel refused a change
  | 'netlink'     // malformed or unexpected netlink message
  | 'usage'       // bad command line
  | 'io'          // file or socket error
  | 'permission'  // the process lacks a capability the command needs
  | 'lab';        // lab setup failed

export interface ConfigLocation {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the field, e.g. "uplinks[1].gateway". */
  field: string;
}

export class UplinkdError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly detail: { location?: ConfigLocation; errno?: string; cause?: unknown; kernelMessage?: string } = {},
  ) {
    super(message);
    this.name = 'UplinkdError';
  }
}

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, failure: 1, invalid: 2 } as const;
