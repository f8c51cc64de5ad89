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
