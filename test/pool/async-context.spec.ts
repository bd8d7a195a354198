import { AsyncLocalStorage } from 'node:async_hooks';
import { createTestPool } from '../support/database.js';

/**
 * A request's AsyncLocalStorage store (a tracing span, nestjs-cls, our own
 * currentConnection()) belongs to that request's code alone: the pool's own tasks and its
 * event listeners must never run inside another request's store.
 */
describe('the pool and its callers\' async context', () => {
  const request = new AsyncLocalStorage<string>();

  it('opens connections in its own context, not in that of the request that made it open one', async () => {
    const pool = createTestPool({ min: 0, max: 2 });
    const seenOnConnect: Array<string | undefined> = [];
    pool.on('connect', () => seenOnConnect.push(request.getStore()));
    // Opened on first use, from inside a request.
    await request.run('request a', () => pool.query('SELECT 1'));
    // Request c's query waits while request b holds the first: a second one is opened for it.
    const held = await request.run('request b', () => pool.acquire());
    await request.run('request c', () => pool.query('SELECT 1'));
    held.release();
    expect(seenOnConnect).toEqual([undefined, undefined]);
    expect(pool.getStats()).toMatchObject({ connectionsNum: 2 });
  });

  it('hands a waiter its client without running the "acquire" listeners in the releasing request\'s context', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    await pool.open({ wait: true });
    const seenOnAcquire: Array<string | undefined> = [];
    pool.on('acquire', () => seenOnAcquire.push(request.getStore()));
    const first = await request.run('request a', () => pool.acquire());
    const waiting = request.run('request b', () => pool.acquire());
    // Released by request a's code: request b is served from there.
    request.run('request a', () => first.release());
    const second = await waiting;
    second.release();
    // An idle connection is handed out in its acquirer's own context.
    const third = await request.run('request c', () => pool.acquire());
    third.release();
    expect(seenOnAcquire).toEqual(['request a', undefined, 'request c']);
  });
});
