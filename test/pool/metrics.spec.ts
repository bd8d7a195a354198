import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import { registerOpenTelemetryMetrics } from '../../lib/opentelemetry.js';
import { registerPrometheusMetrics } from '../../lib/prometheus.js';
import { createTestPool } from '../support/database.js';

/** A reader that collects on demand, as an exporter would. */
class OnDemandReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }

  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe('metrics', () => {
  it('exports every pool stat to prom-client, labelled by pool, read at scrape time', async () => {
    const orders = createTestPool({ name: 'orders', min: 2, max: 4 });
    const reports = createTestPool({ name: 'reports', min: 1, max: 2 });
    await Promise.all([orders.open({ wait: true }), reports.open({ wait: true })]);
    const registry = new Registry();
    registerPrometheusMetrics([orders, reports], { registry });
    await orders.query('SELECT 1');
    await orders.query('SELECT 1');
    const text = await registry.metrics();
    expect(text).toContain('# TYPE pg_pool_pool_size gauge');
    expect(text).toContain('pg_pool_pool_size{pool="orders"} 2');
    expect(text).toContain('pg_pool_pool_max{pool="reports"} 2');
    expect(text).toContain('# TYPE pg_pool_requests_num_total counter');
    expect(text).toContain('pg_pool_requests_num_total{pool="orders"} 2');
    expect(text).toContain('pg_pool_requests_num_total{pool="reports"} 0');
    expect(text).toContain('pg_pool_connections_num_total{pool="orders"} 2');
    await orders.query('SELECT 1');
    expect(await registry.metrics()).toContain('pg_pool_requests_num_total{pool="orders"} 3');
  });

  it('labels at most maxPoolLabels pools by name and sums the rest under (other): tenants cannot blow up the series', async () => {
    const pools = ['a', 'b', 'c', 'd'].map((name) => createTestPool({ name, min: 1, max: 2 }));
    await Promise.all(pools.map((pool) => pool.open({ wait: true })));
    await pools[2].query('SELECT 1');
    await pools[3].query('SELECT 1');
    await pools[3].query('SELECT 1');
    const registry = new Registry();
    registerPrometheusMetrics(() => pools, { registry, maxPoolLabels: 2 });
    const text = await registry.metrics();
    const sizes = text.split('\n').filter((line) => line.startsWith('pg_pool_pool_size{'));
    expect(sizes).toEqual(['pg_pool_pool_size{pool="a"} 1', 'pg_pool_pool_size{pool="b"} 1', 'pg_pool_pool_size{pool="(other)"} 2']);
    expect(text).toContain('pg_pool_requests_num_total{pool="(other)"} 3');
    // The default bound is 50: four pools, four labels.
    const unbounded = new Registry();
    registerPrometheusMetrics(() => pools, { registry: unbounded });
    expect((await unbounded.metrics()).split('\n').filter((line) => line.startsWith('pg_pool_pool_size{'))).toHaveLength(4);
  });

  it('exports every pool stat through the OpenTelemetry metrics API', async () => {
    const pool = createTestPool({ name: 'otel', min: 1, max: 3 });
    await pool.open({ wait: true });
    await pool.query('SELECT 1');
    const reader = new OnDemandReader();
    const provider = new MeterProvider({ readers: [reader] });
    registerOpenTelemetryMetrics([pool], { meter: provider.getMeter('test') });
    const { resourceMetrics } = await reader.collect();
    const points = new Map<string, number>();
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        for (const point of metric.dataPoints) points.set(`${metric.descriptor.name}{${String(point.attributes.pool)}}`, point.value as number);
      }
    }
    expect(points.get('pg_pool_pool_max{otel}')).toBe(3);
    expect(points.get('pg_pool_requests_num{otel}')).toBe(1);
    expect(points.get('pg_pool_connections_num{otel}')).toBe(1);
    await provider.shutdown();
  });
});
