// A TCP server for the lab: answers each connection with the peer address it saw,
// one line, then closes. The address tells which uplink (after NAT) a flow took.
// Usage: node tcp-echo.js --port N [--host ADDR]; prints "listening HOST:PORT" when ready.
import * as net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '0.0.0.0' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: tcp-echo --port N [--host ADDR]');
  process.exit(2);
}

const server = net.createServer((socket) => {
  socket.on('error', () => undefined); // a peer that resets is not the server's problem
  socket.end(`${socket.remoteAddress ?? '?'}\n`);
});
server.on('error', (err) => {
  console.error(`tcp-echo: ${err.message}`);
  process.exit(1);
});
server.listen({ port, host: values.host, backlog: 1024 }, () => console.log(`listening ${values.host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
