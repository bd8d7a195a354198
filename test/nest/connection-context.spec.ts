import { Controller, Get } from '@nestjs/common';
import QueryStream from 'pg-query-stream';
import request from 'supertest';
import type { PgPool, PooledClient } from '../../lib/index.js';
import { Conn, currentConnection, InjectPool, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { appNameOf, backendCount, eventually, testUrlWithAppName } from '../support/database.js';
import { startApp, type TestApp } from '../support/nest-app.js';

/** A promise and its resolver: a point in a handler the test waits for, or lets it past. */
function signal(): { promise: Promise<void>; fire(): void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { promise, fire };
}

let grown = signal();
let letGo = signal();

/** What `currentConnection()` answered in a callback pg made: the request's own client, another, or an error. */
function whose(client: PooledClient): string {
  try {
    return currentConnection() === client ? 'own' : "another request's client";
  } catch (error) {
    return (error as Error).name;
  }
}

@Controller('ctx')
class ContextController {
  constructor(@InjectPool() private readonly pool: PgPool) {}

  /**
   * Holds its connection, inside a transaction, while a query of the injected pool makes
   * the pool open a second connection: from within this request's scope.
   */
  @Get('grow')
  @UseConnection({ transaction: true })
  async grow(@Conn() client: PooledClient): Promise<string> {
    await this.pool.query('SELECT 1');
    grown.fire();
    await letGo.promise;
    await client.query('SELECT 1');
    return 'done';
  }

  /** Gives its connection back broken: the pool opens the replacement from within this request. */
  @Get('replace')
  @UseConnection()
  replace(@Conn() client: PooledClient): string {
    client.release(true);
    return 'replaced';
  }

  @Get('callback')
  @UseConnection()
  callback(@Conn() client: PooledClient): Promise<{ inCallback: string }> {
    return new Promise((resolve, reject) => {
      client.query('SELECT 1', (error: Error | undefined) => {
        if (error) reject(error);
        else resolve({ inCallback: whose(client) });
      });
    });
  }

  @Get('stream')
  @UseConnection()
  stream(@Conn() client: PooledClient): Promise<{ inData: string[] }> {
    return new Promise((resolve, reject) => {
      const seen: string[] = [];
      const rows = client.query(new QueryStream('SELECT generate_series(1, 3) AS n'));
      rows.on('data', () => seen.push(whose(client)));
      rows.on('end', () => resolve({ inData: seen }));
      rows.on('error', reject);
    });
  }
}

/**
 * A connection the pool opens while a request's AsyncLocalStorage scope is active must not
 * carry that scope: pg calls back from the connection's socket (callback-style queries,
 * stream events), in the context the socket was made in, and `currentConnection()` there
 * would hand a later request the first one's client, in its transaction.
 */
describe('connections opened while a request holds a scope', () => {
  let test: TestApp;
  let pool: PgPool;

  beforeEach(async () => {
    grown = signal();
    letGo = signal();
    test = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, max: 2 })],
      controllers: [ContextController],
    });
    pool = test.registry.get();
    await pool.open({ wait: true });
  });

  afterEach(async () => {
    letGo.fire();
    await test.close();
  });

  const http = () => request(test.app.getHttpServer());

  it('a later request on a connection the pool opened inside another request\'s scope sees its own client, never that request\'s', async () => {
    const growing = http().get('/ctx/grow').expect(200).then((response) => response.text);
    await grown.promise;
    // The second connection, opened while /ctx/grow's scope was active, is the idle one.
    expect(pool.getStats()).toMatchObject({ connectionsNum: 2, poolSize: 2 });
    expect(pool.idleCount).toBe(1);

    expect((await http().get('/ctx/callback').expect(200)).body).toEqual({ inCallback: 'own' });
    // A stream's events come from the socket: the client itself, or no client, never another's.
    const { inData } = (await http().get('/ctx/stream').expect(200)).body as { inData: string[] };
    expect(inData).toHaveLength(3);
    for (const answer of inData) expect(['own', 'PoolUsageError']).toContain(answer);

    letGo.fire();
    expect(await growing).toBe('done');
    expect(pool.checkedOutCount).toBe(0);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
  });

  it('the replacement of a connection given back broken does not carry the scope of the request that broke it', async () => {
    await pool.resize(1, 1);
    await http().get('/ctx/replace').expect(200);
    await eventually('the replacement is open', () => pool.idleCount === 1);
    expect((await http().get('/ctx/callback').expect(200)).body).toEqual({ inCallback: 'own' });
    // Opened in all: the first connection and its replacement.
    expect(pool.getStats()).toMatchObject({ connectionsNum: 2 });
  });
});
