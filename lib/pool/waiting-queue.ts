/**
 * Requests waiting for a connection, served strictly first-in first-out.
 *
 * A doubly linked list rather than an array: a waiter that times out leaves from the
 * middle of the queue, and that must be O(1) too, or a long queue of short timeouts
 * turns every timeout into a scan.
 */
export class Waiter<T> {
  /** Set by the queue; `undefined` once the waiter has left it. */
  prev: Waiter<T> | undefined;
  next: Waiter<T> | undefined;
  queued = false;
  /** Only for a timeout other than the pool's default; default ones share the queue's timer. */
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly enqueuedAt: number,
    /** When this waiter gives up: `enqueuedAt + timeoutMs`. */
    readonly deadline: number,
    readonly resolve: (value: T) => void,
    readonly reject: (error: Error) => void,
  ) {}
}

export class WaitingQueue<T> {
  private head: Waiter<T> | undefined;
  private tail: Waiter<T> | undefined;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** The oldest waiter, left in the queue; follow `.next` to walk it. */
  get first(): Waiter<T> | undefined {
    return this.head;
  }

  push(waiter: Waiter<T>): void {
    waiter.prev = this.tail;
    waiter.next = undefined;
    if (this.tail) this.tail.next = waiter;
    else this.head = waiter;
    this.tail = waiter;
    waiter.queued = true;
    this.count++;
  }

  /** The oldest waiter, taken out of the queue. */
  shift(): Waiter<T> | undefined {
    const waiter = this.head;
    if (waiter) this.remove(waiter);
    return waiter;
  }

  /** Takes a waiter out wherever it stands; false if it had already left. */
  remove(waiter: Waiter<T>): boolean {
    if (!waiter.queued) return false;
    if (waiter.prev) waiter.prev.next = waiter.next;
    else this.head = waiter.next;
    if (waiter.next) waiter.next.prev = waiter.prev;
    else this.tail = waiter.prev;
    waiter.prev = waiter.next = undefined;
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
}
