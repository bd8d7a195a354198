import { BadRequestException, Body, Catch, Param, type StreamableFile, Controller, Get, Injectable, Post, UseFilters, UseGuards, UseInterceptors, type CallHandler, type CanActivate, type ExceptionFilter, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { concat, concatMap, finalize, from, interval, of, take, type Observable } from 'rxjs';
import request from 'supertest';
import { PgPool, PoolUsageError, type PooledClient } from '../../lib/index.js';
import { Conn, currentConnection, InjectPool, PgPoolModule, RequestAbortedError, UseConnection } from '../../lib/nest/index.js';
import { adminQuery, appNameOf, backendCount, eventually, testUrlWithAppName } from '../support/database.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import { bodyText, streamedRows } from '../support/streamed-rows.js';

const pidQuery = 'SELECT pg_backend_pid() AS pid';

@Injectable()
class ScopeService {
  async pid(): Promise<number> {
    return (await currentConnection().query<{ pid: number }>(pidQuery)).rows[0].pid;
  }

  async insert(id: number): Promise<void> {
    await currentConnection().query('INSERT INTO uc_spec (id) VALUES ($1)', [id]);
  }
}

/** Takes the handler's first value: unsubscribes from it right after. */
@Injectable()
class TakeFirst implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(take(1));
  }
}

let failingTeardownRan = false;
let firstAtOnceEnded = false;

/** A promise and its resolver: a point the test lets a handler past. */
function signal(): { promise: Promise<void>; fire(): void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { promise, fire };
}
/** The 'default' pool, for handlers that look at it. */
let defaultPool: () => PgPool;

@Controller('c')
@UseConnection()
class ScopedController {
  /** A value at once, then a stream that never ends by itself. */
  @Get('first-at-once')
  @UseInterceptors(TakeFirst)
  firstAtOnce(): Observable<number> {
    return concat(of(1), interval(20)).pipe(finalize(() => {
      firstAtOnceEnded = true;
    }));
  }

  /** A stream that never ends by itself, whose teardown throws. */
  @Get('failing-teardown')
  failingTeardown(): Observable<number> {
    return interval(20).pipe(finalize(() => {
      failingTeardownRan = true;
      throw new Error('the handler\'s teardown failed');
    }));
  }

  constructor(private readonly service: ScopeService) {}

  @Get('same')
  async same(@Conn() client: PooledClient): Promise<{ handler: number; service: number }> {
    const handler = (await client.query<{ pid: number }>(pidQuery)).rows[0].pid;
    return { handler, service: await this.service.pid() };
  }

  @Get('fail')
  async fail(@Conn() client: PooledClient): Promise<never> {
    await client.query('SELECT 1');
    throw new BadRequestException('handler failed on purpose');
  }

  /** Not async: throws before returning anything. */
  @Get('throws-at-once')
  throwsAtOnce(@Conn() client: PooledClient): never {
    throw new BadRequestException(`thrown at once, holding ${typeof client.query}`);
  }

  /** Not async: a plain value, no promise. */
  @Get('plain')
  plain(@Conn() client: PooledClient): { held: boolean } {
    return { held: defaultPool().checkedOutCount === 1 && typeof client.query === 'function' };
  }

  /** Rows streamed to the client from the request's own connection, one per line. */
  @Get('rows')
  @UseConnection({ transaction: true })
  rows(@Conn() client: PooledClient): StreamableFile {
    return streamedRows(client, 2_000);
  }

  @Get('rows-plain')
  rowsPlain(@Conn() client: PooledClient): StreamableFile {
    return streamedRows(client, 2_000);
  }

  /** More rows than any client here reads. */
  @Get('rows-endless')
  @UseConnection({ transaction: true })
  rowsEndless(@Conn() client: PooledClient): StreamableFile {
    return streamedRows(client, 100_000_000);
  }

  @Get('stream')
  stream(@Conn() client: PooledClient): Observable<number> {
    return from([1, 2, 3]).pipe(concatMap(async (i) => (await client.query<{ i: number }>('SELECT $1::int AS i', [i])).rows[0].i));
  }

  @Post('tx')
  @UseConnection({ transaction: true })
  async tx(@Body() body: { id: number; fail?: boolean }): Promise<{ inTransaction: boolean }> {
    await this.service.insert(body.id);
    if (body.fail) throw new BadRequestException('rolled back on purpose');
    return { inTransaction: currentConnection().getTransactionStatus() === 'T' };
  }

  @Get('iso')
  @UseConnection({ transaction: { isolationLevel: 'serializable', readOnly: true } })
  async iso(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query(`SELECT current_setting('transaction_isolation') AS iso,
      current_setting('transaction_read_only') AS ro`)).rows[0];
  }

  @Get('analytics')
  @UseConnection('analytics')
  async analytics(@Conn() client: PooledClient, @Conn('analytics') same: PooledClient): Promise<{ app: string; same: boolean }> {
    const { rows } = await client.query<{ app: string }>("SELECT current_setting('application_name') AS app");
    return { app: rows[0].app, same: client === same };
  }

  @Get('slow')
  async slow(@Conn() client: PooledClient): Promise<string> {
    await client.query('SELECT pg_sleep(20)');
    return 'finished';
  }

  @Post('slow-tx')
  @UseConnection({ transaction: true })
  async slowTx(@Body() body: { id: number }, @Conn() client: PooledClient): Promise<string> {
    await this.service.insert(body.id);
    await client.query('SELECT pg_sleep(20)');
    return 'finished';
  }
}

/** No AsyncLocalStorage scope: the client comes through @Conn() alone. */
@Controller('u')
@UseConnection({ currentConnection: false })
class UnscopedController {
  constructor(private readonly service: ScopeService) {}

  @Get('pid')
  async pid(@Conn() client: PooledClient): Promise<{ pid: number; serviceError: string }> {
    const { pid } = (await client.query<{ pid: number }>(pidQuery)).rows[0];
    const serviceError = await this.service.pid().then(() => 'none', (error: Error) => error.message);
    return { pid, serviceError };
  }

  @Get('both')
  async both(@Conn() client: PooledClient): Promise<{ pid: number; below: number | string }> {
    const { pid } = (await client.query<{ pid: number }>(pidQuery)).rows[0];
    return { pid, below: await this.service.pid().catch((error: Error) => error.message) };
  }

  @Post('tx')
  @UseConnection({ currentConnection: false, transaction: true })
  async tx(@Body() body: { id: number; fail?: boolean }, @Conn() client: PooledClient): Promise<{ inTransaction: boolean }> {
    await client.query('INSERT INTO uc_spec (id) VALUES ($1)', [body.id]);
    if (body.fail) throw new BadRequestException('rolled back on purpose');
    return { inTransaction: client.getTransactionStatus() === 'T' };
  }

  @Get('slow')
  async slow(@Conn() client: PooledClient): Promise<string> {
    await client.query('SELECT pg_sleep(20)');
    return 'finished';
  }
}

const appNameQuery = "SELECT current_setting('application_name') AS app";

@Controller('base')
@UseConnection('analytics')
class BaseController {
  @Get('app')
  async app(@Conn() client: PooledClient): Promise<{ app: string }> {
    return (await client.query<{ app: string }>(appNameQuery)).rows[0];
  }

  @Get('pinned')
  @UseConnection('analytics')
  async pinned(@Conn() client: PooledClient): Promise<{ app: string }> {
    return (await client.query<{ app: string }>(appNameQuery)).rows[0];
  }
}

/** Inherits the base's handlers; its own class-level @UseConnection applies to them, not the base's. */
@Controller('sub')
@UseConnection()
class SubController extends BaseController {}

/** A handler called by code with more arguments than it declares: a rest parameter takes them. */
@Controller('extra')
class ExtraArgumentsController {
  @Get('callee')
  @UseConnection()
  async callee(@Conn() client: PooledClient, ...rest: unknown[]): Promise<{ one: number; rest: unknown[] }> {
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
    return { one: rows[0].one, rest };
  }

  @Get('caller')
  async caller(): Promise<{ promise: boolean; value: unknown }> {
    const result = this.callee(undefined as unknown as PooledClient, 'a', 'b');
    return { promise: result instanceof Promise, value: await result };
  }
}

/** Its handler's hidden parameter sits where the overrides below have a parameter of their own. */
@Controller('overridden')
@UseConnection()
class OverriddenController {
  @Get(':id')
  async item(@Param('id') id: string): Promise<unknown> {
    return { id };
  }
}

@Controller('override')
@UseConnection()
class OverridingController extends OverriddenController {
  @Get(':id')
  override async item(@Param('id') id: string, extra?: unknown): Promise<unknown> {
    const { rows } = await currentConnection().query<{ one: number }>('SELECT 1 AS one');
    return { id, extra: extra === undefined ? 'undefined' : typeof extra, one: rows[0].one };
  }
}

@Controller('override-plain')
class PlainOverridingController extends OverriddenController {
  @Get(':id')
  override async item(@Param('id') id: string, extra?: unknown): Promise<unknown> {
    return { id, extra: extra === undefined ? 'undefined' : typeof extra };
  }
}

/** A method decorator that wraps the function it is given, as tracing decorators do, copying its metadata. */
function Traced(): MethodDecorator {
  return (_target, _key, descriptor: PropertyDescriptor) => {
    const inner = descriptor.value as (...args: unknown[]) => unknown;
    const traced = function traced(this: unknown, ...args: unknown[]): unknown {
      return inner.apply(this, args);
    };
    for (const key of Reflect.getOwnMetadataKeys(inner)) Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, inner), traced);
    descriptor.value = traced;
  };
}

@Controller('traced')
class TracedController {
  @Get('slow')
  @Traced()
  @UseConnection()
  async slow(@Conn() client: PooledClient): Promise<unknown> {
    await client.query('SELECT pg_sleep(20)');
    return {};
  }

  @Get('args/:id')
  @Traced()
  @UseConnection({ transaction: true, settings: { 'app.caller': (request: { headers: Record<string, unknown> }) => String(request.headers['x-caller']) } })
  async args(@Param('id') id: string, @Conn() client: PooledClient, ...rest: unknown[]): Promise<unknown> {
    const { rows } = await client.query<{ caller: string }>("SELECT current_setting('app.caller') AS caller");
    return { id, caller: rows[0].caller, rest };
  }
}

/** A method-level @UseConnection under a tracing decorator, in a controller with one of its own. */
@Controller('traced-pinned')
@UseConnection()
class TracedPinnedController {
  @Get()
  @Traced()
  @UseConnection('analytics')
  async pinned(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query<{ app: string }>(appNameQuery)).rows[0];
  }
}

@Controller('traced-override')
class TracedOverrideController extends TracedPinnedController {
  @Get()
  override async pinned(_client?: PooledClient, extra?: unknown): Promise<unknown> {
    return { extra: extra === undefined ? 'undefined' : typeof extra };
  }
}

/** Calls a handler of another controller directly, as code, not through Nest. */
@Controller('n')
class NestingController {
  static unscoped: UnscopedController;
  static scoped: ScopedController;

  /** Calls handlers of its own pool, not async, that share its connection: each still gives a promise. */
  @Get('same-pool')
  @UseConnection()
  async samePool(@Conn() outer: PooledClient): Promise<unknown> {
    const thrown = NestingController.scoped.throwsAtOnce(undefined as unknown as PooledClient) as unknown;
    const plain = NestingController.scoped.plain(undefined as unknown as PooledClient) as unknown;
    return {
      promises: thrown instanceof Promise && plain instanceof Promise,
      thrown: await (thrown as Promise<unknown>).then(() => 'resolved', (error: Error) => error.message),
      plain: await plain,
      outerHeld: outer.getTransactionStatus() === 'I',
    };
  }

  @Get('from-analytics')
  @UseConnection('analytics')
  async fromAnalytics(@Conn() outer: PooledClient): Promise<unknown> {
    const result = NestingController.unscoped.both(undefined as unknown as PooledClient);
    const { rows } = await outer.query<{ pid: number }>(pidQuery);
    return { promise: result instanceof Promise, outer: rows[0].pid, ...await result };
  }
}

/** Handlers with transactions of their own, called by code from the handlers of NestedTxController. */
@Controller('inner')
class InnerTxController {
  @Post('tx')
  @UseConnection({ transaction: true })
  async tx(@Body() body: { id: number; fail?: boolean }, @Conn() client: PooledClient): Promise<string> {
    await client.query('INSERT INTO uc_spec (id) VALUES ($1)', [body.id]);
    if (body.fail) throw new BadRequestException('inner failed on purpose');
    return 'inner committed';
  }

  @Post('serializable')
  @UseConnection({ transaction: { isolationLevel: 'serializable' } })
  async serializable(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query("SELECT current_setting('transaction_isolation') AS iso")).rows[0];
  }

  /** On another pool: its own connection and transaction, tied to the caller's request. */
  @Post('analytics-slow')
  @UseConnection({ pool: 'analytics', transaction: true })
  async analyticsSlow(@Body() body: { id: number }, @Conn() client: PooledClient): Promise<string> {
    await client.query('INSERT INTO uc_spec (id) VALUES ($1)', [body.id]);
    await client.query('SELECT pg_sleep(20)');
    return 'finished';
  }

  @Get('pid')
  @UseConnection()
  async pid(@Conn() client: PooledClient): Promise<number> {
    return (await client.query<{ pid: number }>(pidQuery)).rows[0].pid;
  }
}

let laterGate = signal();
let laterCall: Promise<unknown> | undefined;

@Controller('outer')
class NestedTxController {
  static inner: InnerTxController;

  /** No transaction of its own: the inner one's is BEGIN … COMMIT on the shared connection. */
  @Post('plain')
  @UseConnection()
  async plain(@Body() body: { id: number; fail?: boolean }): Promise<unknown> {
    const inner = await NestedTxController.inner.tx(body, undefined as unknown as PooledClient).then((v) => v, (error: Error) => error.message);
    return { inner, after: currentConnection().getTransactionStatus() };
  }

  /** In a transaction: the inner one's is a savepoint of it. */
  @Post('tx')
  @UseConnection({ transaction: true })
  async tx(@Body() body: { id: number; innerId: number; innerFails?: boolean }, @Conn() client: PooledClient): Promise<unknown> {
    await client.query('INSERT INTO uc_spec (id) VALUES ($1)', [body.id]);
    const inner = await NestedTxController.inner.tx({ id: body.innerId, fail: body.innerFails }, undefined as unknown as PooledClient)
      .then((v) => v, (error: Error) => error.message);
    const serializable = await NestedTxController.inner.serializable(undefined as unknown as PooledClient).then((v) => v, (error: Error) => error.message);
    return { inner, serializable };
  }

  /** Calls the other pool's slow handler: its client goes away meanwhile. */
  @Post('calls-analytics')
  @UseConnection({ transaction: true })
  async callsAnalytics(@Body() body: { id: number; innerId: number }, @Conn() client: PooledClient): Promise<unknown> {
    await client.query('INSERT INTO uc_spec (id) VALUES ($1)', [body.id]);
    return NestedTxController.inner.analyticsSlow({ id: body.innerId }, undefined as unknown as PooledClient);
  }

  /** Leaves a call of a handler of its own pool for later, after its request has ended. */
  @Get('later')
  @UseConnection()
  async later(@Conn() client: PooledClient): Promise<number> {
    laterCall = laterGate.promise.then(() => NestedTxController.inner.pid(undefined as unknown as PooledClient));
    return (await client.query<{ pid: number }>(pidQuery)).rows[0].pid;
  }
}

/** Lets the request on only once its client has gone: a guard slower than the client's patience. */
let guardEntered = false;
@Injectable()
class PassesOnceTheClientLeft implements CanActivate {
  canActivate(context: ExecutionContext): Promise<boolean> {
    guardEntered = true;
    const response = context.switchToHttp().getResponse<ServerResponse>();
    return new Promise((resolve) => response.once('close', () => resolve(true)));
  }
}

const abandonedBeforeHandler: string[] = [];
@Catch(RequestAbortedError)
class RecordsAbandoned implements ExceptionFilter {
  catch(error: RequestAbortedError): void {
    abandonedBeforeHandler.push(error.message);
  }
}

let lateHandlerRuns = 0;
@Controller('late')
class LateController {
  @Get()
  @UseGuards(PassesOnceTheClientLeft)
  @UseFilters(RecordsAbandoned)
  @UseConnection()
  async late(@Conn() client: PooledClient): Promise<unknown> {
    lateHandlerRuns++;
    return (await client.query('SELECT 1 AS one')).rows[0];
  }
}

@Controller('direct')
class DirectController {
  constructor(@InjectPool() private readonly pool: PgPool) {}

  @Get()
  async direct(): Promise<unknown> {
    return (await this.pool.query('SELECT 1 AS one')).rows[0];
  }
}

describe('@UseConnection', () => {
  let test: TestApp;
  let pool: PgPool;
  let analytics: PgPool;
  let port: number;

  beforeAll(async () => {
    await adminQuery('CREATE TABLE IF NOT EXISTS uc_spec (id int PRIMARY KEY)');
    await adminQuery('TRUNCATE uc_spec');
    test = await startApp({
      imports: [PgPoolModule.forRoot([
        { connectionString: testUrlWithAppName(), min: 1, max: 4, acquireTimeoutMs: 300 },
        { name: 'analytics', connectionString: testUrlWithAppName(), min: 1, max: 2 },
      ])],
      controllers: [ScopedController, UnscopedController, NestingController, BaseController, SubController, DirectController, LateController, InnerTxController, NestedTxController,
        ExtraArgumentsController, OverriddenController, OverridingController, PlainOverridingController, TracedController,
        TracedPinnedController, TracedOverrideController],
      providers: [ScopeService],
    });
    await test.app.listen(0, '127.0.0.1');
    port = (test.app.getHttpServer().address() as { port: number }).port;
    pool = test.registry.get('default');
    defaultPool = () => pool;
    analytics = test.registry.get('analytics');
    NestingController.unscoped = test.app.get(UnscopedController);
    NestingController.scoped = test.app.get(ScopedController);
    NestedTxController.inner = test.app.get(InnerTxController);
  });

  afterAll(async () => {
    await test.close();
  });

  const http = () => request(test.app.getHttpServer());
  const rowExists = async (id: number): Promise<boolean> =>
    (await adminQuery('SELECT 1 FROM uc_spec WHERE id = $1', [id])).length === 1;

  it('gives the handler (@Conn) and the services below it (currentConnection) the same client, then releases it', async () => {
    const { body } = await http().get('/c/same').expect(200);
    expect(body.handler).toBe(body.service);
    expect(pool.checkedOutCount).toBe(0);
    expect(pool.getStats().poolAvailable).toBeGreaterThanOrEqual(1);
  });

  it('releases the connection when the handler throws, and the error reaches the client unchanged', async () => {
    const { body } = await http().get('/c/fail').expect(400);
    expect(body.message).toBe('handler failed on purpose');
    expect(pool.checkedOutCount).toBe(0);
  });

  it('runs a handler that is not async: a synchronous throw reaches the client and the connection is released, a plain value is sent', async () => {
    const thrown = await http().get('/c/throws-at-once').expect(400);
    expect(thrown.body.message).toBe('thrown at once, holding function');
    expect(pool.checkedOutCount).toBe(0);
    expect((await http().get('/c/plain').expect(200)).body).toEqual({ held: true });
    expect(pool.checkedOutCount).toBe(0);
  });

  it('serves requests that wait for a connection as those that find one idle: each its own client, all released', async () => {
    // 4 connections, 12 requests at once: 8 wait in line for a released one.
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => i % 3 === 0
      ? http().get('/c/throws-at-once').expect(400)
      : http().get(i % 3 === 1 ? '/c/plain' : '/c/same').expect(200)));
    expect(responses.filter((response) => response.status === 200)).toHaveLength(8);
    for (const response of responses.filter((r) => r.body.handler !== undefined)) expect(response.body.handler).toBe(response.body.service);
    expect(pool.checkedOutCount).toBe(0);
    expect(pool.getStats().requestsNum).toBeGreaterThanOrEqual(12);
  });

  it('streams a StreamableFile read from the request\'s connection, holding the connection (and its transaction) until the stream ends', async () => {
    for (const path of ['/c/rows', '/c/rows-plain']) {
      const text = await bodyText(http().get(path).expect(200));
      const lines = text.trim().split('\n');
      expect(lines).toHaveLength(2_000);
      expect(lines[1_999]).toBe('2000');
      await eventually('the connection is back', () => pool.checkedOutCount === 0);
    }
    expect(pool.getStats().returnsBad).toBe(0);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
  });

  it('releases the connection of a streamed response whose client leaves halfway, and rolls its transaction back', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const firstRows = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /c/rows-endless HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await firstRows;
    expect(pool.checkedOutCount).toBe(1);
    socket.destroy();
    await eventually('the connection is back', () => pool.checkedOutCount === 0);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
    // The pool serves the next request.
    expect((await http().get('/c/same').expect(200)).body.handler).toEqual(expect.any(Number));
  });

  it('holds the connection through an Observable that emits several values, releasing it on complete', async () => {
    const { text } = await http().get('/c/stream').expect(200);
    expect(text).toBe('3'); // Nest answers with the last value
    expect(pool.checkedOutCount).toBe(0);
  });

  it('commits a transaction when the handler succeeds', async () => {
    const { body } = await http().post('/c/tx').send({ id: 1 }).expect(201);
    expect(body).toEqual({ inTransaction: true });
    expect(await rowExists(1)).toBe(true);
  });

  it('rolls back a transaction when the handler writes and then throws: no row is left', async () => {
    await http().post('/c/tx').send({ id: 2, fail: true }).expect(400);
    expect(await rowExists(2)).toBe(false);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
  });

  it('begins the transaction with the isolation level and access mode asked for', async () => {
    const { body } = await http().get('/c/iso').expect(200);
    expect(body).toEqual({ iso: 'serializable', ro: 'on' });
  });

  it('uses the pool the handler names, overriding the controller', async () => {
    const { body } = await http().get('/c/analytics').expect(200);
    expect(body).toEqual({ app: appNameOf(analytics), same: true });
    expect(analytics.checkedOutCount).toBe(0);
  });

  it('throws a clear error when currentConnection() is called outside a @UseConnection scope', () => {
    expect(() => currentConnection()).toThrow(PoolUsageError);
    expect(() => currentConnection('analytics')).toThrow(/^pool 'analytics': no connection in scope/);
  });

  /** Sends a raw request and destroys the socket once the server runs its statement. */
  async function disconnectDuring(method: string, path: string, body = ''): Promise<void> {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await eventually('the handler is running its statement', async () => (await adminQuery(
      "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep(20)%' AND state = 'active'",
      [appNameOf(pool)])).length === 1);
    socket.destroy();
  }

  it('runs no handler and takes no connection for a client that left before the handler was reached', async () => {
    const asked = pool.getStats().requestsNum;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /late HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await eventually('the guard holds the request', () => guardEntered);
    socket.destroy();
    await eventually('the request is refused as abandoned', () => abandonedBeforeHandler.length === 1);
    expect(abandonedBeforeHandler[0]).toMatch(/^pool 'default': the client disconnected before the response was sent/);
    expect(lateHandlerRuns).toBe(0);
    expect(pool.getStats().requestsNum).toBe(asked);
    expect(pool.checkedOutCount).toBe(0);
  });

  it('cancels the statement and releases the connection when the HTTP client disconnects mid-request', async () => {
    const startedAt = Date.now();
    await disconnectDuring('GET', '/c/slow');
    await eventually('the connection is back in the pool', () => pool.checkedOutCount === 0 && pool.getStats().poolAvailable >= 1);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect((await adminQuery("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
      [appNameOf(pool)])).length).toBe(0);
  });

  it('works through a method decorator that wraps it (tracing): the request reaches its settings, and a disconnect still cancels', async () => {
    const { body } = await http().get('/traced/args/3').set('x-caller', 'tracer').expect(200);
    expect(body).toEqual({ id: '3', caller: 'tracer', rest: [] });
    await disconnectDuring('GET', '/traced/slow');
    await eventually('the connection is back in the pool', () => pool.checkedOutCount === 0 && pool.getStats().poolAvailable >= 1);
    expect((await adminQuery("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
      [appNameOf(pool)])).length).toBe(0);
  });

  it('under a tracing decorator, a method-level @UseConnection still wins over its controller\'s, and an override gets nothing hidden', async () => {
    expect((await http().get('/traced-pinned').expect(200)).body).toEqual({ app: appNameOf(analytics) });
    expect((await http().get('/traced-override').expect(200)).body).toEqual({ extra: 'undefined' });
    expect(pool.checkedOutCount + analytics.checkedOutCount).toBe(0);
  });

  it('rolls back the transaction of a request whose client disconnected', async () => {
    await disconnectDuring('POST', '/c/slow-tx', JSON.stringify({ id: 3 }));
    await eventually('the connection is back in the pool', () => pool.checkedOutCount === 0);
    expect(await rowExists(3)).toBe(false);
  });

  /** A raw keep-alive connection to the app, and what it has received so far. */
  async function rawConnection(): Promise<{ socket: ReturnType<typeof connect>; received: () => string }> {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, received: () => received };
  }
  const slowTx = (id: number): string => {
    const body = JSON.stringify({ id });
    return `POST /c/slow-tx HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  };
  const sleepingStatements = async (): Promise<number> => (await adminQuery(
    "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep(20)%' AND state = 'active'",
    [appNameOf(pool)])).length;

  it('abandons a request whose client leaves after its keep-alive connection carried others, and not those it carried', async () => {
    const { socket, received } = await rawConnection();
    for (let served = 1; served <= 3; served++) {
      socket.write('GET /c/analytics HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await eventually(`response ${served} on the same connection`, () => received().split('HTTP/1.1 200').length - 1 === served);
    }
    socket.write(slowTx(6));
    await eventually('the handler is running its statement', async () => (await sleepingStatements()) === 1);
    socket.destroy();
    await eventually('the connection is back in the pool', () => pool.checkedOutCount === 0 && analytics.checkedOutCount === 0);
    expect(await rowExists(6)).toBe(false);
    expect(await sleepingStatements()).toBe(0);
  });

  it('abandons both of two pipelined requests whose client leaves: the second, whose response waits for the first, too', async () => {
    const { socket } = await rawConnection();
    socket.write(slowTx(7) + slowTx(8));
    await eventually('both handlers are running their statements', async () => (await sleepingStatements()) === 2);
    socket.destroy();
    await eventually('both connections are back in the pool', () => pool.checkedOutCount === 0);
    expect(await rowExists(7)).toBe(false);
    expect(await rowExists(8)).toBe(false);
    expect(await sleepingStatements()).toBe(0);
  });

  it('releases the connection of an Observable handler whose client leaves, even when the handler\'s teardown throws', async () => {
    failingTeardownRan = false;
    const { socket } = await rawConnection();
    socket.write('GET /c/failing-teardown HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await eventually('the handler holds its connection', () => pool.checkedOutCount === 1);
    socket.destroy();
    await eventually('the handler\'s teardown ran', () => failingTeardownRan);
    await eventually('the connection is back in the pool', () => pool.checkedOutCount === 0);
    await http().get('/c/same').expect(200);
  });

  it('ends the handler\'s Observable when an interceptor takes a value it emitted at once, during subscribe', async () => {
    firstAtOnceEnded = false;
    const { text } = await http().get('/c/first-at-once').expect(200);
    expect(text).toBe('1');
    await eventually('the handler\'s stream is unsubscribed', () => firstAtOnceEnded);
    await eventually('the connection is back', () => pool.checkedOutCount === 0);
  });

  it('applies a subclass\'s class-level @UseConnection to the handlers it inherits; a method-level one still wins', async () => {
    expect((await http().get('/base/app').expect(200)).body).toEqual({ app: appNameOf(analytics) });
    expect((await http().get('/sub/app').expect(200)).body).toEqual({ app: appNameOf(pool) });
    expect((await http().get('/sub/pinned').expect(200)).body).toEqual({ app: appNameOf(analytics) });
    expect(pool.checkedOutCount + analytics.checkedOutCount).toBe(0);
  });

  it('runs a handler called by code with more arguments than it declares: a promise, its client, every argument', async () => {
    const { body } = await http().get('/extra/caller').expect(200);
    expect(body).toEqual({ promise: true, value: { one: 1, rest: ['a', 'b'] } });
    expect(pool.checkedOutCount).toBe(0);
  });

  it('gives an override\'s own parameter undefined where its base handler had its hidden one, decorated or not', async () => {
    expect((await http().get('/overridden/7').expect(200)).body).toEqual({ id: '7' });
    expect((await http().get('/override/7').expect(200)).body).toEqual({ id: '7', extra: 'undefined', one: 1 });
    expect((await http().get('/override-plain/7').expect(200)).body).toEqual({ id: '7', extra: 'undefined' });
    expect(pool.checkedOutCount).toBe(0);
  });

  it('a handler with a transaction, called from one of its own pool without one: BEGIN … ROLLBACK of its own on the shared connection', async () => {
    const { body } = await http().post('/outer/plain').send({ id: 501, fail: true }).expect(201);
    expect(body).toEqual({ inner: 'inner failed on purpose', after: 'I' });
    expect(await rowExists(501)).toBe(false);
    expect((await http().post('/outer/plain').send({ id: 502 }).expect(201)).body).toEqual({ inner: 'inner committed', after: 'I' });
    expect(await rowExists(502)).toBe(true);
    expect(pool.checkedOutCount).toBe(0);
  });

  it('a handler with a transaction, called inside its caller\'s transaction: a savepoint, undone if it throws, while the caller\'s work commits', async () => {
    const { body } = await http().post('/outer/tx').send({ id: 511, innerId: 512, innerFails: true }).expect(201);
    expect(body.inner).toBe('inner failed on purpose');
    // What only BEGIN can set is refused, not silently dropped.
    expect(body.serializable).toMatch(/^pool 'default': a transaction with isolationLevel cannot run inside the transaction of the handler that called it/);
    expect(await rowExists(511)).toBe(true);
    expect(await rowExists(512)).toBe(false);
    await http().post('/outer/tx').send({ id: 513, innerId: 514 }).expect(201);
    expect(await rowExists(513)).toBe(true);
    expect(await rowExists(514)).toBe(true);
    expect(pool.checkedOutCount).toBe(0);
  });

  it('a handler of another pool called by one whose HTTP client leaves is abandoned too: both transactions roll back', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const body = JSON.stringify({ id: 521, innerId: 522 });
    socket.write(`POST /outer/calls-analytics HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await eventually('the inner handler is running its statement', async () => (await adminQuery(
      "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%pg_sleep(20)%' AND state = 'active'",
      [appNameOf(analytics)])).length === 1);
    socket.destroy();
    await eventually('both connections are back', () => pool.checkedOutCount === 0 && analytics.checkedOutCount === 0);
    expect(await rowExists(521)).toBe(false);
    expect(await rowExists(522)).toBe(false);
    expect(await backendCount(appNameOf(analytics), 'idle in transaction')).toBe(0);
  });

  it('a handler of its own pool called after its caller\'s request has ended takes a connection of its own', async () => {
    laterGate = signal();
    const { text: outerPid } = await http().get('/outer/later').expect(200);
    expect(pool.checkedOutCount).toBe(0);
    laterGate.fire();
    expect(typeof await laterCall).toBe('number');
    expect(Number(outerPid)).toBeGreaterThan(0);
    expect(pool.checkedOutCount).toBe(0);
  });

  describe('with currentConnection: false', () => {
    it('called directly from another pool\'s handler: a promise, its own client through @Conn(), and never the outer pool\'s client below it', async () => {
      const { body } = await http().get('/n/from-analytics').expect(200);
      expect(body.promise).toBe(true);
      // Inside the outer scope it opens one of its own: code below it gets its client.
      expect(body.below).toBe(body.pid);
      expect(body.pid).not.toBe(body.outer);
      expect(pool.checkedOutCount).toBe(0);
      expect(analytics.checkedOutCount).toBe(0);
    });

    it('called directly from a handler of its own pool: it shares that connection, and still gives a promise, rejected by a synchronous throw', async () => {
      const { body } = await http().get('/n/same-pool').expect(200);
      expect(body).toEqual({ promises: true, thrown: 'thrown at once, holding function', plain: { held: true }, outerHeld: true });
      expect(pool.checkedOutCount).toBe(0);
    });

    it('opens no scope over HTTP: code below the handler cannot reach its client', async () => {
      const { body } = await http().get('/u/both').expect(200);
      expect(body.below).toMatch(/^pool 'default': no connection in scope/);
    });

    it('gives the handler its client through @Conn() and opens no scope: currentConnection() below it throws', async () => {
      const { body } = await http().get('/u/pid').expect(200);
      expect(body.pid).toEqual(expect.any(Number));
      expect(body.serviceError).toMatch(/^pool 'default': no connection in scope/);
      expect(pool.checkedOutCount).toBe(0);
    });

    it('commits the transaction on success and rolls it back when the handler throws', async () => {
      const { body } = await http().post('/u/tx').send({ id: 11 }).expect(201);
      expect(body).toEqual({ inTransaction: true });
      expect(await rowExists(11)).toBe(true);
      await http().post('/u/tx').send({ id: 12, fail: true }).expect(400);
      expect(await rowExists(12)).toBe(false);
      expect(pool.checkedOutCount).toBe(0);
      expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
    });

    it('cancels the statement and releases the connection when the HTTP client disconnects', async () => {
      await disconnectDuring('GET', '/u/slow');
      await eventually('the connection is back in the pool', () => pool.checkedOutCount === 0 && pool.getStats().poolAvailable >= 1);
      expect((await adminQuery("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
        [appNameOf(pool)])).length).toBe(0);
    });
  });

  it('maps pool exhaustion to 503 with a short JSON body naming the pool and Retry-After', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => pool.acquire()));
    try {
      const response = await http().get('/direct').expect(503);
      expect(response.body).toEqual({
        statusCode: 503, error: 'Service Unavailable', pool: 'default',
        message: 'the database is busy: no connection became available in time; retry later',
      });
      expect(response.headers['retry-after']).toBe('1');
    } finally {
      held.forEach((client) => client.release());
    }
  });
});

describe('@UseConnection under exhaustion', () => {
  let test: TestApp;

  beforeAll(async () => {
    test = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, max: 1, acquireTimeoutMs: 200, maxWaiting: 1 })],
      controllers: [ScopedController],
      providers: [ScopeService],
    });
  });

  afterAll(async () => {
    await test.close();
  });

  it('answers 503, not a hang or a 500, when no connection frees up within acquireTimeoutMs', async () => {
    const pool = test.registry.get();
    const held = await pool.acquire();
    try {
      const response = await request(test.app.getHttpServer()).get('/c/same').expect(503);
      expect(response.body.message).toMatch(/no connection became available in time/);
      expect(JSON.stringify(response.body)).not.toMatch(/stack|at |127\.0\.0\.1/);
    } finally {
      held.release();
    }
  });

  it('answers 503 at once when maxWaiting requests already wait', async () => {
    const pool = test.registry.get();
    const held = await pool.acquire();
    try {
      const waiting = pool.acquire({ timeoutMs: 5_000 });
      const response = await request(test.app.getHttpServer()).get('/c/same').expect(503);
      expect(response.body.message).toMatch(/too many requests are waiting/);
      held.release();
      (await waiting).release();
    } finally {
      if (pool.checkedOutCount > 0) held.release();
    }
  });
});
