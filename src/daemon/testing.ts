// Test helpers for the daemon's unit tests: a virtual clock/timer queue and a port wrapper
// that counts what the daemon does and can hide events (as a netlink overrun would).
import type { KernelEvent, KernelPort } from '../kernel/port';
import type { Change, KernelState } from '../model/types';
import type { Timers } from './daemon';

/** Timers on a virtual clock: nothing fires until advance(). */
export class VirtualTimers implements Timers {
  now = Date.UTC(2024, 0, 1);
  private queue: { id: number; due: number; fn: () => void }[] = [];
  private nextId = 1;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.queue.push({ id, due: this.now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.queue = this.queue.filter((t) => t.id !== handle);
  }

  /** Moves the clock forward, firing due timers in order and letting async work settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    await settle();
    for (;;) {
      const next = this.queue.filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!next) break;
      this.queue = this.queue.filter((t) => t !== next);
      this.now = next.due;
      next.fn();
      await settle();
    }
    this.now = target;
  }
}

/** Lets promise chains and immediate callbacks run to completion (the fake kernel never waits on I/O). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

export class CountingPort implements KernelPort {
  writes: Change[] = [];
  snapshots = 0;
  /** While true, kernel events are not delivered (lost, as after ENOBUFS). */
  muted = false;

  constructor(readonly kernel: KernelPort) {}

  snapshot(): Promise<KernelState> {
    this.snapshots++;
    return this.kernel.snapshot();
  }

  apply(change: Change): Promise<void> {
    this.writes.push(change);
    return this.kernel.apply(change);
  }

  subscribe(onEvent: (e: KernelEvent) => void, onOverrun: () => void): () => void {
    return this.kernel.subscribe((e) => {
      if (!this.muted) onEvent(e);
    }, onOverrun);
  }

  close(): void {
    this.kernel.close();
  }
}
