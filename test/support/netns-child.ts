// Child program behind NetnsKernelPort: runs a NetlinkKernelPort in the network namespace it was
// started in (`ip netns exec NS node netns-child.js`) and serves it as JSON lines on stdin/stdout.
// Requests are handled in order, so an answer proves every earlier request took effect.
import { createInterface } from 'node:readline';
import { UplinkdError } from '../../src/errors';
import type { Change } from '../../src/model/types';
import { NetlinkKernelPort, type NetlinkPortOptions } from '../../src/kernel/netlink-port';
import type { RouteInterest } from '../../src/kernel/port';

export type ChildRequest =
  | { id: number; method: 'snapshot'; interest?: RouteInterest }
  | { id: number; method: 'nexthopUsers'; ids: number[] }
  | { id: number; method: 'apply'; change: Change }
  | { id: number; method: 'subscribe' }
  | { id: number; method: 'unsubscribe'; sub: number }
  | { id: number; method: 'routeNotifications' };

export type ChildMessage =
  | { id: number; result?: unknown; error?: { code: string; message: string; errno?: string; kernelMessage?: string } }
  | { sub: number; event: unknown }
  | { sub: number; overrun: true; reason?: string };

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as NetlinkPortOptions;
  const port = await NetlinkKernelPort.open({ ...options, log: (l) => process.stderr.write(`${l}\n`) });
  const send = (m: ChildMessage) => process.stdout.write(`${JSON.stringify(m)}\n`);
  const unsubscribers = new Map<number, () => void>();
  let queue = Promise.resolve();
  const handle = async (req: ChildRequest): Promise<unknown> => {
    switch (req.method) {
      case 'snapshot': return port.snapshot(req.interest);
      case 'nexthopUsers': return port.nexthopUsers(req.ids);
      case 'apply': return port.apply(req.change);
      case 'subscribe':
        unsubscribers.set(req.id, port.subscribe((event) => send({ sub: req.id, event }), (reason) => send({ sub: req.id, overrun: true, ...(reason ? { reason } : {}) })));
        return req.id;
      case 'unsubscribe':
        unsubscribers.get(req.sub)?.();
        unsubscribers.delete(req.sub);
        return undefined;
      case 'routeNotifications': return port.routeNotifications;
    }
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const req = JSON.parse(line) as ChildRequest;
    queue = queue.then(async () => {
      try {
        send({ id: req.id, result: await handle(req) });
      } catch (e) {
        const err = e instanceof UplinkdError
          ? { code: e.code, message: e.message, errno: e.detail.errno, kernelMessage: e.detail.kernelMessage }
          : { code: 'io', message: String((e as Error)?.message ?? e) };
        send({ id: req.id, error: err });
      }
    });
  });
  lines.on('close', () => void queue.then(() => port.close()));
}

main().catch((e) => {
  process.stderr.write(`netns-child: ${(e as Error).message}\n`);
  process.exit(1);
});
