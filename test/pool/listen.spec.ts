import { appNameOf, backendCount, createTestPool, eventually } from '../support/database.js';
import { PostgresServer } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';

describe('LISTEN/NOTIFY', () => {
  it('delivers notifications to listeners, on a connection of its own', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const received: string[] = [];
    await pool.listen('orders', (payload, channel) => received.push(`${channel}:${payload}`));
    await pool.notify('orders', 'created 42');
    await pool.notify('other', 'not for us');
    await pool.notify('orders');
    await eventually('both notifications arrived', () => received.length === 2);
    expect(received).toEqual(['orders:created 42', 'orders:']);
    // The listening session is not one of the pool's connections.
    expect(pool.getStats().poolSize).toBe(1);
    expect(await backendCount(appNameOf(pool))).toBe(2);
  });

  it('quotes channel names as identifiers: any string is a channel, none is SQL', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const channel = 'weird "channel"; DROP TABLE x; --';
    const received: string[] = [];
    await pool.listen(channel, (payload) => received.push(payload));
    await pool.notify(channel, 'safe');
    await eventually('the notification arrived', () => received.length === 1);
    expect(received).toEqual(['safe']);
  });

  it('stops delivering after unlisten, and close leaves no session behind', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const received: string[] = [];
    const stop = await pool.listen('jobs', (payload) => received.push(payload));
    await pool.notify('jobs', 'one');
    await eventually('the first arrived', () => received.length === 1);
    await stop();
    await pool.notify('jobs', 'two');
    // A marker on another channel proves notifications are flowing, without sleeping.
    const marker: string[] = [];
    await pool.listen('marker', (payload) => marker.push(payload));
    await pool.notify('marker', 'm');
    await eventually('the marker arrived', () => marker.length === 1);
    expect(received).toEqual(['one']);
    await pool.close();
    await eventually('every session is gone', async () => (await backendCount(appNameOf(pool))) === 0);
  });

  it('listens again after a server restart, and notifications arrive again', async () => {
    const server = await PostgresServer.create({ password: TEST_PASSWORD });
    await server.start();
    try {
      const pool = createTestPool({ connectionString: server.url(), min: 1, acquireTimeoutMs: 1_000, reconnectDelayMs: 50, reconnectMaxDelayMs: 200 });
      const received: string[] = [];
      await pool.listen('events', (payload) => received.push(payload));
      await pool.notify('events', 'before');
      await eventually('the first arrived', () => received.includes('before'));
      await server.stop();
      await server.start();
      // Notify until one gets through: the listener is back once one arrives.
      await eventually('a notification arrives after the restart', async () => {
        await pool.notify('events', 'after').catch(() => undefined);
        return received.includes('after');
      }, 15_000);
      await pool.close();
    } finally {
      await server.destroy();
    }
  });
});
