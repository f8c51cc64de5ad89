// A TCP client for the lab: opens COUNT short connections to TARGET:PORT (at most
// CONCURRENCY at a time), reads the one-line answer of tcp-echo (the source address
// the server saw) and prints a JSON tally: {"seen":{"addr":n,...},"failed":n,"errors":{...}}.
// Usage: node tcp-tally.js --target ADDR --port N [--count N] [--concurrency N] [--timeout-ms N] [--source ADDR]
import * as net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    port: { type: 'string' },
    count: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '16' },
    'timeout-ms': { type: 'string', default: '2000' },
    source: { type: 'string' },
  },
});
const port = Number(values.port);
const count = Number(values.count);
const concurrency = Math.max(1, Number(values.concurrency));
const timeoutMs = Number(values['timeout-ms']);
if (!values.target || !Number.isInteger(port) || !Number.isInteger(count) || count < 0 || !(timeoutMs > 0)) {
  console.error('usage: tcp-tally --target ADDR --port N [--count N] [--concurrency N] [--timeout-ms N] [--source ADDR]');
  process.exit(2);
}
const target = values.target;

/** The peer address the server reports, or an error text. */
function once(): Promise<{ seen?: string; error?: string }> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = net.connect({ host: target, port, ...(values.source ? { localAddress: values.source } : {}) });
    const done = (r: { seen?: string; error?: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ error: 'timeout' }), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('end', () => (answer.trim() ? done({ seen: answer.trim() }) : done({ error: 'empty answer' })));
    socket.on('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }));
  });
}

async function main(): Promise<void> {
  const seen: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const r = await once();
      if (r.seen !== undefined) seen[r.seen] = (seen[r.seen] ?? 0) + 1;
      else {
        failed++;
        errors[r.error ?? '?'] = (errors[r.error ?? '?'] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  console.log(JSON.stringify({ seen, failed, errors }));
}

void main();
