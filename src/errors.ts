/** The one error type uplinkd throws on purpose. `code` is stable for callers and tests. */
export type ErrorCode =
  | 'config'      // invalid configuration: file, line, column, field
  | 'kernel'      // the kernel refused a change
  | 'netlink'     // malformed or unexpected netlink message
  | 'usage'       // bad command line
  | 'io'          // file or socket error
  | 'permission'  // the process lacks a capability the command needs
  | 'lab';        // lab setup failed

/** Where a configuration problem is: line and column are 1-based. */
export interface ConfigLocation {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the field, e.g. "uplinks[1].gateway". */
  field: string;
}

/**
 * The error uplinkd throws: `code` (ErrorCode) for callers and tests, a message for people, and `detail`:
 * `location` of a config problem, `errno` name of a kernel refusal (e.g. `EEXIST`), `kernelMessage` (the extended
 * ACK's NLMSGERR_ATTR_MSG), `cause` (the underlying error).
 */
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
