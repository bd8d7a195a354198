export { registerPrometheusMetrics, type PrometheusMetricsOptions } from './metrics/prometheus.js';
export type { PoolSource } from './metrics/pool-source.js';
