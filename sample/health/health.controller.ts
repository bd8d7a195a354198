import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { PgPoolHealthIndicator } from 'nestjs-pg-pool/nest';

/** The readiness probe: 200 while the database answers `SELECT 1` within a second, 503 otherwise. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: PgPoolHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.database.isHealthy('database', { pool: 'default', timeoutMs: 1000 })]);
  }
}
