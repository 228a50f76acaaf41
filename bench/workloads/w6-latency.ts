// W6 "latency" (issue 14): with both daemons running on default settings, how long from a file
// closed at alice to the file renamed into place at bob; the median and the maximum of a series,
// through a `file` relay and through WebDAV (`rclone serve webdav`) on loopback. Once the
// configuration has a `watch` option, the same series with `watch = no` is measured beside.
import { randomBytes } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openServerEnv } from '../../test/conformance/servers/harness.js';
import { RCLONE_BINARIES, startRcloneWebdav } from '../../test/conformance/servers/rclone-webdav.js';
import { betweenVariants, byScale, type BenchContext } from '../context.js';
import { hasWatchOption, startDaemons, stopAll, waitConverged, type Daemon } from '../daemons.js';
import { addRelay, type RelayFigures } from '../measure.js';
import { checked, unavailableRow, type Figure, type Row, type WorkloadResult } from '../report.js';

/** Size of each file whose latency is measured. */
const FILE_BYTES = 4096;
/** Targets of issue 14 (seconds), for default settings. */
const MEDIAN_TARGET = 2;
const MAX_TARGET = 5;

/** A relay to measure on: the section keys, and how to release it. */
type Relay = { keys: Record<string, string | number>; stop(): Promise<void> } | { unavailable: string };

const RELAYS: ReadonlyArray<{ name: string; open(context: BenchContext, dir: string): Promise<Relay> }> = [
  {
    name: 'file relay',
    async open(_context, dir) {
      const path = join(dir, 'relay');
      await mkdir(path, { recursive: true });
      return { keys: { protocol: 'file', 'relay path': path }, stop: async () => undefined };
    },
  },
  {
    name: 'WebDAV (rclone serve)',
    async open() {
      const opened = await openServerEnv('bench-w6-webdav', { binaries: RCLONE_BINARIES });
      if ('skip' in opened) return { unavailable: opened.skip };
      const server = await startRcloneWebdav(opened.env, false);
      return { keys: { protocol: 'http', 'relay address': '127.0.0.1', port: server.port, 'relay directory': 'relay', user: server.user, password: server.password }, stop: opened.stop };
    },
  },
];

/** Runs W6 on each relay, with default settings and (when the option exists) `watch = no`. */
export async function runW6(context: BenchContext): Promise<WorkloadResult> {
  const samples = byScale(context, { smoke: 2, quick: 5, full: 20 });
  // why: a polling daemon's latency depends on when the file is closed within its cycle; random
  // gaps this long spread the samples over the cycle (refresh 30 s: the sleep after a transfer is 15 s).
  const maxGapMs = byScale(context, { smoke: 1500, quick: 5000, full: 8000 });
  // why: a sample waits for at most this long; a longer one is recorded as this long and noted.
  const timeoutMs = byScale(context, { smoke: 30_000, quick: 90_000, full: 120_000 });
  const settings: ReadonlyArray<{ name: string; keys: Record<string, string | number>; target: boolean }> = [
    { name: context.scale === 'smoke' ? 'refresh = 2 (smoke run)' : 'default settings', keys: context.scale === 'smoke' ? { refresh: 2 } : {}, target: context.scale !== 'smoke' },
    ...(hasWatchOption() ? [{ name: 'watch = no', keys: { watch: 'no' }, target: false }] : []),
  ];
  const rows: Row[] = [];
  const figures: Figure[] = [];
  const notes: string[] = [`W6 rows: wall s is the median latency of ${samples} files; CPU s is both daemons over the series`];
  if (!hasWatchOption()) notes.push('no `watch` option in this build: the `watch = no` rows appear once it exists');
  for (const relaySpec of RELAYS) {
    for (const setting of settings) {
      const label = `${relaySpec.name}, ${setting.name}`;
      const dir = join(context.scratch, `w6-${rows.length}`);
      await mkdir(join(dir, 'alice', 'lat'), { recursive: true });
      await mkdir(join(dir, 'bob'), { recursive: true });
      const relay = await relaySpec.open(context, dir);
      if ('unavailable' in relay) {
        rows.push(unavailableRow(label, relay.unavailable));
        continue;
      }
      try {
        context.log(`W6: ${label}: ${samples} files`);
        await betweenVariants(context);
        const measured = await series(context, dir, { ...relay.keys, ...setting.keys }, samples, timeoutMs, maxGapMs);
        rows.push({ label, baseline: false, wallMs: measured.median * 1000, cpuMs: measured.cpuMs, maxRssKiB: measured.peakRssKiB, ...(measured.relay ? { relay: measured.relay } : {}), bytesMoved: samples * FILE_BYTES });
        const target = (limit: number): { op: '<='; limit: number } | undefined => (setting.target ? { op: '<=', limit } : undefined);
        figures.push(checked('value', `W6 ${label}: latency median of ${samples}`, measured.median, target(MEDIAN_TARGET), 's'));
        figures.push(checked('value', `W6 ${label}: latency max`, measured.max, target(MAX_TARGET), 's'));
        if (measured.timedOut > 0) notes.push(`${label}: ${measured.timedOut} of ${samples} files had not arrived after ${timeoutMs / 1000} s (counted as ${timeoutMs / 1000} s)`);
      } finally {
        await relay.stop();
      }
    }
  }
  return { id: 'W6', title: `latency: a file closed at alice until it is in place at bob, both daemons running, ${FILE_BYTES} B files`, rows, figures, notes };
}

/** Starts both daemons, waits until a first file has crossed, then measures `samples` files one after the other. */
async function series(context: BenchContext, dir: string, keys: Record<string, string | number>, samples: number, timeoutMs: number, maxGapMs: number): Promise<{ median: number; max: number; timedOut: number; cpuMs: number; peakRssKiB: number; relay?: Row['relay'] }> {
  const daemons: Daemon[] = await startDaemons(context, dir, { alice: { 'local path': join(dir, 'alice'), ...keys }, bob: { 'local path': join(dir, 'bob'), ...keys } });
  const latencies: number[] = [];
  let timedOut = 0;
  let cpuMs = 0;
  let peakRssKiB = 0;
  let stopped: Awaited<ReturnType<typeof stopAll>>;
  try {
    // why: a first file proves both daemons run and have met the relay; it is not measured.
    await writeFile(join(dir, 'alice', 'warm-up.bin'), randomBytes(FILE_BYTES));
    await waitConverged(join(dir, 'bob'), 1, undefined, 0, timeoutMs * 2, daemons);
    const cpuBefore = await Promise.all(daemons.map((d) => d.cpuSeconds()));
    for (let i = 0; i < samples; i += 1) {
      // why: irregular gaps, so that samples do not fall in step with the daemons' polling.
      await sleep(300 + Math.floor(Math.random() * (maxGapMs - 300)));
      const name = `s${String(i).padStart(3, '0')}.bin`;
      await writeFile(join(dir, 'alice', 'lat', name), randomBytes(FILE_BYTES));
      const closed = performance.now();
      const arrived = await arrival(join(dir, 'bob', 'lat', name), closed + timeoutMs);
      if (arrived === undefined) timedOut += 1;
      latencies.push(((arrived ?? closed + timeoutMs) - closed) / 1000);
    }
    const cpuAfter = await Promise.all(daemons.map((d) => d.cpuSeconds()));
    cpuMs = cpuAfter.reduce((sum, v, i) => sum + v - (cpuBefore[i] ?? 0), 0) * 1000;
    peakRssKiB = Math.max(...(await Promise.all(daemons.map((d) => d.peakRssKiB()))));
  } finally {
    stopped = await stopAll(daemons);
  }
  const relay = stopped.reduce<RelayFigures | undefined>((sum, s) => addRelay(sum, s.relay), undefined);
  return { ...summary(latencies, timedOut, cpuMs, peakRssKiB), ...(relay ? { relay } : {}) };
}

function summary(latencies: number[], timedOut: number, cpuMs: number, peakRssKiB: number): { median: number; max: number; timedOut: number; cpuMs: number; peakRssKiB: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number), timedOut, cpuMs, peakRssKiB };
}

/** When the complete file appeared at `path` (polled every 20 ms), or undefined at `deadline`. */
async function arrival(path: string, deadline: number): Promise<number | undefined> {
  while (performance.now() < deadline) {
    const info = await stat(path).catch(() => undefined);
    if (info !== undefined && info.size === FILE_BYTES) return performance.now();
    await sleep(20);
  }
  return undefined;
}
