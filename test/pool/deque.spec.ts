import { Deque } from '../../lib/pool/deque.js';

describe('Deque', () => {
  it('pops from the front in insertion order and from the back in reverse', () => {
    const deque = new Deque<number>(4);
    for (let i = 0; i < 10; i++) deque.pushBack(i);
    expect(deque.popFront()).toBe(0);
    expect(deque.popBack()).toBe(9);
    expect([...deque]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(deque.length).toBe(8);
  });

  it('keeps order across wrap-around and growth', () => {
    const deque = new Deque<number>(4);
    const model: number[] = [];
    // Interleave pushes and pops at both ends so the head wraps many times while growing.
    for (let i = 0; i < 1000; i++) {
      if (i % 3 === 0) {
        deque.pushFront(i);
        model.unshift(i);
      } else {
        deque.pushBack(i);
        model.push(i);
      }
      if (i % 5 === 0) expect(deque.popFront()).toBe(model.shift());
      if (i % 7 === 0) expect(deque.popBack()).toBe(model.pop());
    }
    expect([...deque]).toEqual(model);
    expect(deque.peekFront()).toBe(model[0]);
  });

  it('removes an item from the middle and drains the rest in order', () => {
    const deque = new Deque<string>();
    ['a', 'b', 'c', 'd'].forEach((x) => deque.pushBack(x));
    expect(deque.remove('c')).toBe(true);
    expect(deque.remove('z')).toBe(false);
    expect(deque.drain()).toEqual(['a', 'b', 'd']);
    expect(deque.length).toBe(0);
    expect(deque.popFront()).toBeUndefined();
    expect(deque.popBack()).toBeUndefined();
  });
});
