import { Waiter, WaitingQueue } from '../../lib/pool/waiting-queue.js';

const waiter = (id: number): Waiter<number> & { id: number } =>
  Object.assign(new Waiter<number>(id, id, () => undefined, () => undefined), { id });

describe('WaitingQueue', () => {
  it('serves waiters first in, first out', () => {
    const queue = new WaitingQueue<number>();
    const all = [1, 2, 3].map(waiter);
    all.forEach((w) => queue.push(w));
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(all);
    expect(queue.shift()).toBeUndefined();
  });

  it('removes a waiter from the middle, the head or the tail without disturbing the order', () => {
    const queue = new WaitingQueue<number>();
    const all = [1, 2, 3, 4, 5].map(waiter);
    all.forEach((w) => queue.push(w));
    expect(queue.remove(all[2])).toBe(true);
    expect(queue.remove(all[0])).toBe(true);
    expect(queue.remove(all[4])).toBe(true);
    expect(queue.remove(all[2])).toBe(false);
    expect(queue.length).toBe(2);
    expect(queue.drain()).toEqual([all[1], all[3]]);
  });

  it('does not take back a waiter that was already served', () => {
    const queue = new WaitingQueue<number>();
    const first = waiter(1);
    queue.push(first);
    expect(queue.shift()).toBe(first);
    expect(queue.remove(first)).toBe(false);
    expect(queue.length).toBe(0);
  });

  it('keeps FIFO order across many removals from the middle and the compactions they cause', () => {
    const queue = new WaitingQueue<number>();
    const all = Array.from({ length: 1000 }, (_, i) => waiter(i));
    all.forEach((w) => queue.push(w));
    all.filter((w) => w.id % 10 !== 0).forEach((w) => queue.remove(w));
    const late = Array.from({ length: 200 }, (_, i) => waiter(1000 + i));
    late.forEach((w) => queue.push(w)); // pushes compact the removed ones away
    expect(queue.length).toBe(300);
    expect(queue.drain().map((w) => w.enqueuedAt)).toEqual([...all.filter((w) => w.id % 10 === 0), ...late].map((w) => w.id));
  });

  it('lets waiters be removed while iterating, and iterates only the queued ones', () => {
    const queue = new WaitingQueue<number>();
    const all = [1, 2, 3, 4, 5].map(waiter);
    all.forEach((w) => queue.push(w));
    queue.remove(all[1]);
    const seen: number[] = [];
    for (const w of queue) {
      seen.push(w.enqueuedAt);
      if (w === all[2]) queue.remove(all[3]);
      queue.remove(w);
    }
    expect(seen).toEqual([1, 3, 5]);
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });
});
