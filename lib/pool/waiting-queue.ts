import { Deque } from './deque.js';

/** A request waiting for a connection. */
export class Waiter<T> {
  /** True while the waiter is in the queue; false once served, timed out or cancelled. */
  queued = false;
  /** Only for a timeout other than the pool's default; default ones share the queue's timer. */
  timer: NodeJS.Timeout | undefined;
  /** With leak detection: the stack of the code that asked. */
  origin: string | undefined;

  constructor(
    readonly enqueuedAt: number,
    /** When this waiter gives up: `enqueuedAt + timeoutMs`. */
    readonly deadline: number,
    readonly resolve: (value: T) => void,
    readonly reject: (error: Error) => void,
  ) {}
}

/**
 * Requests waiting for a connection, served strictly first-in first-out.
 *
 * A ring-buffer deque with lazy removal: a waiter that times out is only marked, in
 * O(1), and skipped when it reaches the front. Waiters hold no links to each other,
 * which keeps each one small and cheap for the garbage collector when thousands wait
 * (a linked list's next pointers made every new waiter reachable from an old one).
 * Marked waiters are compacted away once they outnumber the live ones, so memory stays
 * proportional to the queue.
 */
export class WaitingQueue<T> {
  private readonly items = new Deque<Waiter<T>>(64);
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(waiter: Waiter<T>): void {
    // Compact here rather than in remove(), so that iterating while removing stays safe.
    if (this.items.length > 2 * this.count + 64) this.compact();
    waiter.queued = true;
    this.items.pushBack(waiter);
    this.count++;
  }

  /** Puts a waiter ahead of every other: a request that was already served once and must wait again. */
  pushFront(waiter: Waiter<T>): void {
    waiter.queued = true;
    this.items.pushFront(waiter);
    this.count++;
  }

  /** The oldest waiter, taken out of the queue. */
  shift(): Waiter<T> | undefined {
    for (let waiter = this.items.popFront(); waiter; waiter = this.items.popFront()) {
      if (!waiter.queued) continue;
      waiter.queued = false;
      this.count--;
      return waiter;
    }
    return undefined;
  }

  /** Takes a waiter out wherever it stands; false if it had already left. */
  remove(waiter: Waiter<T>): boolean {
    if (!waiter.queued) return false;
    waiter.queued = false;
    this.count--;
    return true;
  }

  /** Empties the queue, oldest first. */
  drain(): Array<Waiter<T>> {
    const all: Array<Waiter<T>> = [];
    for (let waiter = this.shift(); waiter; waiter = this.shift()) all.push(waiter);
    return all;
  }

  /** The waiters still queued, oldest first. Safe to `remove()` while iterating (not to push). */
  *[Symbol.iterator](): IterableIterator<Waiter<T>> {
    for (const waiter of this.items) if (waiter.queued) yield waiter;
  }

  private compact(): void {
    for (const waiter of this.items.drain()) if (waiter.queued) this.items.pushBack(waiter);
  }
}
