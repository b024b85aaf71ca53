import { readdirSync } from 'node:fs';
import { Counter, Gauge, type Registry } from './prom-client.js';

/**
 * The usual process metrics under their usual names, read at scrape time. Not prom-client's
 * collectDefaultMetrics: it samples the event loop every 10 ms (100 wake-ups a second in an
 * agent that polls once a second) and made a scrape about 7 times slower (bench/metrics-scrape).
 */
export function registerProcessMetrics(registers: Registry[]): void {
  const cpuCounter = (name: string, help: string, read: (usage: NodeJS.CpuUsage) => number) => {
    let reported = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const seconds = read(process.cpuUsage()) / 1e6;
        this.inc(Math.max(0, seconds - reported));
        reported = seconds;
      },
    });
  };
  cpuCounter('process_cpu_user_seconds_total', 'User CPU time spent, in seconds.', (usage) => usage.user);
  cpuCounter('process_cpu_system_seconds_total', 'System CPU time spent, in seconds.', (usage) => usage.system);
  cpuCounter('process_cpu_seconds_total', 'User and system CPU time spent, in seconds.', (usage) => usage.user + usage.system);
  const startTime = new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since the Unix epoch, in seconds.', registers });
  startTime.set(Math.round(Date.now() / 1000 - process.uptime()));
  const gauge = (name: string, help: string, read: () => number | undefined) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const value = read();
        if (value !== undefined) this.set(value);
      },
    });
  gauge('process_resident_memory_bytes', 'Resident memory size, in bytes.', () => process.memoryUsage.rss());
  gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.', () => process.memoryUsage().heapUsed);
  gauge('nodejs_heap_size_total_bytes', 'V8 heap reserved, in bytes.', () => process.memoryUsage().heapTotal);
  gauge('process_open_fds', 'Open file descriptors.', () => {
    try {
      return readdirSync('/proc/self/fd').length;
    } catch {
      return undefined;
    }
  });
  new Gauge({ name: 'nodejs_version_info', help: 'Node.js version.', labelNames: ['version'], registers }).set({ version: process.version }, 1);
}
