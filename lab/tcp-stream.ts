// A long-lived TCP stream for the lab, both ends.
//   serve:   node tcp-stream.js serve --port N
//            each connection gets one line, the peer address the server saw, then everything it
//            sends is echoed back. Prints "listening 0.0.0.0:N".
//   connect: node tcp-stream.js connect --target ADDR --port N [--want ADDR] [--attempts N]
//            connects until the server reports seeing `want` (the flow left through that uplink),
//            closing the others; then sends CHUNK bytes every TICK ms and counts what comes back.
//            Prints JSON lines: {"event":"open","peer":..,"attempts":n}, then
//            {"event":"progress","sent":n,"received":n} every 100 ms, and {"event":"error",..}
//            or {"event":"closed"} when the stream ends. Runs until killed (SIGTERM: clean close).
import * as net from 'node:net';
import { parseArgs } from 'node:util';

const CHUNK = 1024;
const TICK_MS = 10;
const PROGRESS_MS = 100;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: 'string' },
    port: { type: 'string' },
    want: { type: 'string' },
    attempts: { type: 'string', default: '64' },
  },
});
const port = Number(values.port);
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

function serve(): void {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined); // a reset is the client's to report
    socket.write(`${socket.remoteAddress ?? '?'}\n`);
    socket.pipe(socket);
  });
  server.on('error', (err) => {
    console.error(`tcp-stream: ${err.message}`);
    process.exit(1);
  });
  server.listen({ port, host: '0.0.0.0' }, () => console.log(`listening 0.0.0.0:${port}`));
  process.on('SIGTERM', () => process.exit(0));
}

/** Connects once; resolves with the socket and the peer address the server reported. */
function open(target: string): Promise<{ socket: net.Socket; peer: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target, port });
    let line = '';
    const timer = setTimeout(() => fail(new Error('timeout')), 3000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onData = (d: Buffer) => {
      line += d.toString('latin1');
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      resolve({ socket, peer: line.slice(0, nl) });
    };
    socket.on('data', onData);
    socket.on('error', fail);
  });
}

async function connect(target: string, want: string | undefined, attempts: number): Promise<void> {
  let stream: { socket: net.Socket; peer: string } | undefined;
  let tries = 0;
  const seen: string[] = [];
  while (!stream && tries < attempts) {
    tries++;
    // Each new connection gets a new source port, so another hash and perhaps another uplink.
    const s = await open(target).catch((err: Error) => ({ error: err.message }));
    if ('error' in s) seen.push(s.error);
    else if (want === undefined || s.peer === want) stream = s;
    else {
      seen.push(s.peer);
      s.socket.destroy();
    }
  }
  if (!stream) {
    say({ event: 'error', error: `no connection seen as ${want} in ${tries} attempts (saw ${[...new Set(seen)].join(', ')})` });
    process.exit(1);
  }
  const { socket, peer } = stream;
  say({ event: 'open', peer, attempts: tries, local: `${socket.localAddress}:${socket.localPort}` });
  let sent = 0;
  let received = 0;
  const chunk = Buffer.alloc(CHUNK, 0x61);
  const writer = setInterval(() => {
    socket.write(chunk);
    sent += CHUNK;
  }, TICK_MS);
  const reporter = setInterval(() => say({ event: 'progress', sent, received }), PROGRESS_MS);
  socket.on('data', (d: Buffer) => (received += d.length));
  const end = (o: object) => {
    clearInterval(writer);
    clearInterval(reporter);
    say({ ...o, sent, received });
    process.exit(0);
  };
  socket.on('error', (err: NodeJS.ErrnoException) => end({ event: 'error', error: err.code ?? err.message }));
  socket.on('close', () => end({ event: 'closed' }));
  process.on('SIGTERM', () => {
    clearInterval(writer);
    socket.removeAllListeners('close');
    socket.end(() => end({ event: 'stopped' }));
    setTimeout(() => end({ event: 'stopped' }), 500).unref();
  });
}

if (!Number.isInteger(port) || port <= 0 || port > 65535 || !['serve', 'connect'].includes(positionals[0] ?? '')) {
  console.error('usage: tcp-stream serve --port N | tcp-stream connect --target ADDR --port N [--want ADDR] [--attempts N]');
  process.exit(2);
}
if (positionals[0] === 'serve') serve();
else if (!values.target) {
  console.error('tcp-stream connect: --target is required');
  process.exit(2);
} else void connect(values.target, values.want, Number(values.attempts));
