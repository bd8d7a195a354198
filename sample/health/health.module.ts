import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PgPoolHealthIndicator } from 'nestjs-pg-pool/nest';
import { HealthController } from './health.controller.js';

@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [PgPoolHealthIndicator],
})
export class HealthModule {}
