import { writeSync } from 'node:fs';

/**
 * Makes writes to a closed stdout/stderr (EPIPE: `uplinkd plan --format ip | head -1`, a log reader
 * that went away) drop the output instead of crashing on an unhandled 'error' event. The command is
 * not cut short: it goes on and exits with its own status (0 when it succeeded), as `head` reading
 * less is not a failure of uplinkd. Exiting at once (the 141 of a SIGPIPE death) could stop `apply`
 * half way through its changes or end the daemon because its log reader quit. Node ignores SIGPIPE,
 * so EPIPE is how the closed pipe shows (write(2)). Other stream errors are thrown as before.
 * Node makes process.stdout and process.stderr on first use, and making one loads the stream modules (a
 * pipe's also node:net): each gets its handler when first used, so a command that never uses one (a
 * `status` answered by the daemon, printed with writeOut) does not pay for it.
 */
export function dropOutputOnClosedPipe(): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const property = Object.getOwnPropertyDescriptor(process, name);
    const make = property?.get;
    if (make === undefined || property?.configurable !== true) {
      ignoreClosedPipe(process[name]);
      continue;
    }
    let stream: NodeJS.WriteStream | undefined;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: property.enumerable ?? true,
      get: () => {
        if (stream === undefined) {
          stream = make.call(process) as NodeJS.WriteStream;
          ignoreClosedPipe(stream);
        }
        return stream;
      },
    });
  }
}

function ignoreClosedPipe(stream: NodeJS.WritableStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
    throw err;
  });
}

/**
 * Writes `text` to standard output (fd 1) with write(2), without making process.stdout, and drops it when
 * the reader is gone (EPIPE), as dropOutputOnClosedPipe does. A descriptor left non-blocking by the caller
 * (EAGAIN on a full pipe) gets the rest through process.stdout, which waits. Other errors are thrown.
 */
export function writeOut(text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return;
    if (code !== 'EAGAIN') throw err;
    process.stdout.write(bytes.subarray(done));
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
