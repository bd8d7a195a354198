import 'reflect-metadata';
import { Controller, Get, Inject, Injectable, Module, UseInterceptors, type CallHandler, type ExecutionContext, type NestInterceptor, type OnApplicationShutdown } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import pg from 'pg';
import type { PgPool, PooledClient } from 'nestjs-pg-pool';
import { Conn, InjectPool, PgPoolModule, UseConnection } from 'nestjs-pg-pool/nest';

/**
 * The HTTP benchmark's server, run in its own process: the same query through
 * `@UseConnection` and through a `pg.Pool` used by hand, both with 10 connections.
 */
const HAND_POOL = 'HAND_POOL';

/** Does nothing: the cost of Nest's interceptor pipeline alone, for comparison. */
@Injectable()
class NoopInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

@Controller()
class BenchController {
  constructor(@Inject(HAND_POOL) private readonly pool: pg.Pool, @InjectPool('mux') private readonly mux: PgPool) {}

  @Get('use-connection')
  @UseConnection()
  async useConnection(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query('SELECT 1 AS one')).rows[0];
  }

  /** The same without a currentConnection() scope: no AsyncLocalStorage. */
  @Get('use-connection-unscoped')
  @UseConnection({ currentConnection: false })
  async useConnectionUnscoped(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query('SELECT 1 AS one')).rows[0];
  }

  @Get('by-hand')
  async byHand(): Promise<unknown> {
    return (await this.pool.query('SELECT 1 AS one')).rows[0];
  }

  /** TechEmpower's "multiple queries": 20 independent lookups per request, on the multiplexed pool. */
  @Get('queries-multiplexed')
  queriesMultiplexed(): Promise<unknown[]> {
    return twentyLookups((id) => this.mux.query('SELECT id, name, score FROM bench_rows WHERE id = $1', [id]));
  }

  /** The same on pg.Pool by hand. */
  @Get('queries-by-hand')
  queriesByHand(): Promise<unknown[]> {
    return twentyLookups((id) => this.pool.query('SELECT id, name, score FROM bench_rows WHERE id = $1', [id]));
  }

  @Get('by-hand-intercepted')
  @UseInterceptors(NoopInterceptor)
  async byHandIntercepted(): Promise<unknown> {
    return (await this.pool.query('SELECT 1 AS one')).rows[0];
  }
}

async function twentyLookups(lookup: (id: number) => Promise<pg.QueryResult>): Promise<unknown[]> {
  const ids = Array.from({ length: 20 }, () => 1 + Math.floor(Math.random() * 1000));
  return (await Promise.all(ids.map(lookup))).map((result) => result.rows[0]);
}

class HandPoolCloser implements OnApplicationShutdown {
  constructor(@Inject(HAND_POOL) private readonly pool: pg.Pool) {}

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}

@Module({
  imports: [PgPoolModule.forRoot([
    { connectionString: process.env.URL, min: 10, max: 10 },
    { name: 'mux', connectionString: process.env.URL, min: 10, max: 10, multiplex: true },
  ])],
  controllers: [BenchController],
  providers: [
    { provide: HAND_POOL, useFactory: () => new pg.Pool({ connectionString: process.env.URL, max: 10 }) },
    HandPoolCloser,
    NoopInterceptor,
  ],
})
class BenchModule {}

// PLATFORM=fastify: the same app on @nestjs/platform-fastify.
const app = process.env.PLATFORM === 'fastify'
  ? await NestFactory.create<NestFastifyApplication>(BenchModule, new FastifyAdapter(), { logger: ['error'] })
  : await NestFactory.create(BenchModule, { logger: ['error'] });
await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
console.log(`ready ${(app.getHttpServer().address() as { port: number }).port}`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
