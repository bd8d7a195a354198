import { Controller, Get } from '@nestjs/common';
import type { PoolStats } from 'nestjs-pg-pool';
import { PgPoolRegistry } from 'nestjs-pg-pool/nest';

/** Every pool's stats (psycopg_pool's names), by database id. */
@Controller('pool')
export class PoolStatsController {
  constructor(private readonly pools: PgPoolRegistry) {}

  @Get('stats')
  stats(): Record<string, PoolStats> {
    return this.pools.stats();
  }
}
