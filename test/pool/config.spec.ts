import { PgPool, PoolConfigError, POOL_DEFAULTS } from '../../lib/index.js';
import { testUrl } from '../support/database.js';

describe('configuration', () => {
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a URL that is not postgresql://', { connectionString: 'mysql://u:p@h/db' }, /must be a URL starting with postgresql:\/\//],
    ['a port that is not a number', { connectionString: 'postgresql://u:p@localhost:notaport/db' }, /`connectionString` could not be parsed \(TypeError\); expected postgresql:\/\/user:password@host:port\/database/],
    ['min above max', { min: 5, max: 2 }, /`min` \(5\) must not exceed `max` \(2\)/],
    ['max 0', { max: 0 }, /`max` must be an integer >= 1, not 0/],
    ['a negative timeout', { acquireTimeoutMs: -1 }, /`acquireTimeoutMs` must be an integer >= 0, not -1/],
    ['a NaN timeout', { maxIdleMs: Number.NaN }, /`maxIdleMs` must be an integer >= 1, not NaN/],
    ['a fractional size', { min: 1.5 }, /`min` must be an integer >= 0, not 1.5/],
    ['an unknown order', { order: 'random' }, /`order` must be 'fifo' or 'lifo', not "random"/],
    ['an unknown option (a typo)', { maxIdle: 1000 }, /unknown option `maxIdle` \(did you mean `maxIdleMs`\?\); known options are ours \(.*maxIdleMs/],
    ['a misspelt pg.Pool setting', { idleTimeoutMilis: 1000 }, /unknown option `idleTimeoutMilis` \(did you mean `idleTimeoutMillis`\?\)/],
    ['a custom Promise class', { Promise: class Other<T> extends Promise<T> {} }, /`Promise`: a custom Promise class is not supported/],
    ['maxUses 0', { maxUses: 0 }, /`maxUses` must be an integer >= 1, not 0/],
    ['a reset that is not a function', { reset: 'RESET ALL' }, /`reset` must be a function/],
    ['a non-boolean checkOnAcquire', { checkOnAcquire: 'yes' }, /`checkOnAcquire` must be true, false or a function/],
  ];

  it.each(bad)('refuses %s with a PoolConfigError naming the pool', (_what, options, message) => {
    const create = (): PgPool => new PgPool({ name: 'billing', connectionString: testUrl(), ...options });
    expect(create).toThrow(PoolConfigError);
    expect(create).toThrow(message);
    expect(create).toThrow(/^pool 'billing': /);
  });

  it('never puts the password of an unparsable URL in the error', () => {
    const create = (): PgPool => new PgPool({ connectionString: 'postgresql://user:s3cr%zzet@host:x/db' });
    expect(create).toThrow(PoolConfigError);
    try {
      create();
    } catch (error) {
      expect((error as Error).message).not.toContain('s3cr');
    }
  });

  it('applies the documented defaults', () => {
    const pool = new PgPool({ connectionString: testUrl() });
    expect(pool.options).toMatchObject({
      name: 'default', min: 4, max: 4, acquireTimeoutMs: 30_000, maxWaiting: 0, maxLifetimeMs: 3_600_000,
      maxIdleMs: 600_000, reconnectTimeoutMs: 300_000, order: 'fifo', keepaliveIntervalMs: 0,
    });
    expect(POOL_DEFAULTS.min).toBe(4);
    expect(pool.state).toBe('new');
  });

  it('lets connection fields override those parsed from the URL', () => {
    const pool = new PgPool({ connectionString: 'postgresql://u:p@db.example:6543/app', connection: { database: 'other' } });
    expect(pool.target).toBe('db.example:6543/other');
  });
});
