import 'reflect-metadata';
import { Controller, Get, Inject, Module, type ExecutionContext } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { NestFactory } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import pg from 'pg';
import type { PooledClient } from 'nestjs-pg-pool';
import { Conn, PgPoolModule, UseConnection } from 'nestjs-pg-pool/nest';
import { FakeClientClass } from './fake-client.js';
import { interleaved } from './measure.js';

/**
 * Run in a process of its own by the HTTP benchmark: the CPU time of `@UseConnection`'s
 * own work per request, against `pg.Pool.query` by hand, with no HTTP and no database
 * (both pools on a client that answers at once). The handlers are called as Nest's
 * router calls them: each parameter from its decorator's factory, with an execution
 * context, then the handler. Without the network's and the server's noise, a difference
 * of a microsecond shows. Prints JSON: its parameters, and each route's microseconds per
 * request in each round.
 */
const HAND_POOL = 'HAND_POOL';
const CONCURRENT = 32;
const REQUESTS_PER_BATCH = 20_000;
const ROUNDS = 15;

@Controller()
class CostController {
  constructor(@Inject(HAND_POOL) private readonly pool: pg.Pool) {}

  @Get('by-hand')
  async byHand(): Promise<unknown> {
    return (await this.pool.query('SELECT 1 AS one')).rows[0] ?? null;
  }

  @Get('use-connection')
  @UseConnection()
  async useConnection(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query('SELECT 1 AS one')).rows[0] ?? null;
  }

  @Get('use-connection-unscoped')
  @UseConnection({ currentConnection: false })
  async useConnectionUnscoped(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query('SELECT 1 AS one')).rows[0] ?? null;
  }
}

@Module({
  imports: [PgPoolModule.forRoot({ connection: {}, Client: FakeClientClass, min: 10, max: 10 })],
  controllers: [CostController],
  providers: [{ provide: HAND_POOL, useFactory: () => new pg.Pool({ Client: FakeClientClass, max: 10 }) }],
})
class CostModule {}

type Handler = (...args: unknown[]) => Promise<unknown>;
type ParamFactory = (data: unknown, context: ExecutionContext) => unknown;

/**
 * A request's arguments as Nest's router has them on Express: Node's request and response
 * on the caller's connection (a socket that never connects, kept across its requests as
 * keep-alive keeps one), and next.
 */
function httpArguments(socket: Socket): unknown[] {
  const request = new IncomingMessage(socket);
  return [request, new ServerResponse(request), undefined];
}

/**
 * Calls a route as Nest's router does: each parameter from its factory, with an execution
 * context of its own (Nest makes one per custom parameter), then the handler.
 */
function routeCaller(instance: CostController, key: keyof CostController): (socket: Socket) => Promise<unknown> {
  const handler = instance[key] as unknown as Handler;
  const params = Object.values((Reflect.getMetadata(ROUTE_ARGS_METADATA, CostController, key) ?? {}) as
    Record<string, { index: number; data?: unknown; factory?: ParamFactory }>);
  return (socket) => {
    const http = httpArguments(socket);
    const args: unknown[] = [];
    for (const { index, data, factory } of params) {
      const context = new ExecutionContextHost(http, CostController, handler);
      context.setType('http');
      args[index] = factory?.(data, context);
    }
    return handler.apply(instance, args);
  };
}

/** CPU time per request of `CONCURRENT` callers making `REQUESTS_PER_BATCH` requests in all. */
async function batch(call: (socket: Socket) => Promise<unknown>): Promise<number> {
  let started = 0;
  const caller = async (socket: Socket): Promise<void> => {
    while (started++ < REQUESTS_PER_BATCH) await call(socket);
  };
  const before = process.cpuUsage();
  await Promise.all(sockets.map(caller));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / REQUESTS_PER_BATCH;
}

/** Each concurrent caller's connection. */
const sockets = Array.from({ length: CONCURRENT }, () => new Socket());
const app = await NestFactory.createApplicationContext(CostModule, { logger: ['error'] });
const controller = app.get(CostController);
const routes = { byHand: routeCaller(controller, 'byHand'), useConnection: routeCaller(controller, 'useConnection'),
  unscoped: routeCaller(controller, 'useConnectionUnscoped') };
for (const call of Object.values(routes)) for (let i = 0; i < 5; i++) await batch(call); // warm-up: JIT
const names = Object.keys(routes) as Array<keyof typeof routes>;
const samples = await interleaved(names, ROUNDS, (name) => batch(routes[name]));
await app.close();
console.log(JSON.stringify({ concurrent: CONCURRENT, requestsPerRound: REQUESTS_PER_BATCH, ...samples }));
