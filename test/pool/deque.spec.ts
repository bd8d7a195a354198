import fc from 'fast-check';
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

  it('behaves as an array under any mix of operations, across wrap-around and growth', () => {
    const operation = fc.oneof(
      fc.record({ op: fc.constantFrom('pushBack' as const, 'pushFront' as const), value: fc.integer() }),
      fc.record({ op: fc.constantFrom('popFront' as const, 'popBack' as const) }),
      fc.record({ op: fc.constant('remove' as const), value: fc.integer({ min: 0, max: 20 }) }),
    );
    fc.assert(fc.property(fc.array(operation, { maxLength: 300 }), (operations) => {
      const deque = new Deque<number>(4);
      const model: number[] = [];
      for (const step of operations) {
        switch (step.op) {
          case 'pushBack': deque.pushBack(step.value); model.push(step.value); break;
          case 'pushFront': deque.pushFront(step.value); model.unshift(step.value); break;
          case 'popFront': expect(deque.popFront()).toBe(model.shift()); break;
          case 'popBack': expect(deque.popBack()).toBe(model.pop()); break;
          case 'remove': {
            const at = model.indexOf(step.value);
            expect(deque.remove(step.value)).toBe(at !== -1);
            if (at !== -1) model.splice(at, 1);
            break;
          }
        }
        expect(deque.length).toBe(model.length);
      }
      expect([...deque]).toEqual(model);
    }));
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
