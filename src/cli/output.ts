/**
 * Makes writes to a closed stdout/stderr (EPIPE: `uplinkd plan --format ip | head -1`, a log reader
 * that went away) drop the output instead of crashing on an unhandled 'error' event. The command is
 * not cut short: it goes on and exits with its own status (0 when it succeeded), as `head` reading
 * less is not a failure of uplinkd. Exiting at once (the 141 of a SIGPIPE death) could stop `apply`
 * half way through its changes or end the daemon because its log reader quit. Node ignores SIGPIPE,
 * so EPIPE is how the closed pipe shows (write(2)). Other stream errors are thrown as before.
 */
export function dropOutputOnClosedPipe(streams: readonly NodeJS.WritableStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
      throw err;
    });
  }
}

/**
 * JSON.stringify(value, null, 2) that a terminal shows as text: JSON.stringify escapes only
 * U+0000..U+001F (RFC 8259 section 7), so DEL, the C1 controls (U+0080..U+009F, which include CSI),
 * the line/paragraph separators and the bidi formatting characters are written as \uXXXX too.
 * Still valid JSON with the same value.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
