export { registerOpenTelemetryMetrics, type OpenTelemetryMetricsOptions } from './metrics/opentelemetry.js';
export type { PoolSource } from './metrics/pool-source.js';
