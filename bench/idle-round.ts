#!/usr/bin/env node
// Runs rounds of one client in this process, as the daemon does, and prints what each round
// cost as JSON: wall and CPU time of the process, relay requests and bytes. W3 uses it to measure
// an idle round with every cache warm (the second round of a running client).
// Usage: node dist/bench/idle-round.js CONFIG SECTION ROUNDS
// The second round is an idle daemon round (the relay's change marker is polled, local changes come
// from file-system events); rounds after the second list the relay anyway, as the daemon does every
// `refresh`. With ESCALE_BENCH_IDLE_PROFILE=FILE, the rounds after the first are CPU-profiled into FILE.
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/core/log.js';
import { fileSink } from '../src/local/log-file.js';
import { cipherFor } from '../src/daemon/run.js';
import { openClient } from '../src/daemon/client.js';
import { emptyCounters, totalCalls } from '../src/relay/wrap/stats.js';

/** What one round cost. */
export interface RoundFigures {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly requests: number;
  readonly calls: Record<string, number>;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly transferred: number;
}

const [configPath, section, roundsText] = process.argv.slice(2);
if (configPath === undefined || section === undefined) {
  console.error('usage: idle-round CONFIG SECTION [ROUNDS]');
  process.exit(2);
}
const loaded = await loadConfig(configPath);
const config = loaded.clients.find((c) => c.section === section);
if (config === undefined) throw new Error(`no section [${section}]`);
const logger = createLogger([fileSink({ path: loaded.global.logFile, level: loaded.global.logLevel, rotate: loaded.global.logRotate })], 'escale').child(section);
const counters = emptyCounters();
// why: as the daemon opens it: following local changes through file-system events.
const client = await openClient(config, { logger, cipher: (c) => cipherFor(c, { logger }), relayCounters: counters, watch: true });
const rounds: RoundFigures[] = [];
try {
  for (let i = 0; i < Number(roundsText ?? 2); i += 1) {
    const profile = process.env['ESCALE_BENCH_IDLE_PROFILE'];
    const session = i > 0 && profile !== undefined && profile !== '' ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const before = { ...counters, calls: { ...counters.calls } };
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const report = await client.runner.round(undefined, { list: i !== 1 });
    const wallMs = performance.now() - t0;
    const used = process.cpuUsage(cpu);
    if (session && profile !== undefined) {
      const { profile: data } = await session.post('Profiler.stop');
      await writeFile(profile, JSON.stringify(data));
      session.disconnect();
    }
    const calls: Record<string, number> = {};
    for (const [method, n] of Object.entries(counters.calls)) calls[method] = n - before.calls[method as keyof typeof before.calls];
    rounds.push({
      wallMs,
      cpuMs: (used.user + used.system) / 1000,
      requests: totalCalls(counters) - totalCalls(before),
      calls,
      bytesRead: counters.bytesRead - before.bytesRead,
      bytesWritten: counters.bytesWritten - before.bytesWritten,
      transferred: report.transferred,
    });
  }
} finally {
  await client.close();
}
process.stdout.write(`${JSON.stringify({ rounds, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
