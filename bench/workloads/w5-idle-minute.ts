// W5 "idle minute" (issue 14): two daemons with default settings (alice and bob, shared mode)
// converge on a tree through a `file` relay, then the CPU each spends over a quiet window is
// measured and given per minute; placeholder protocol and `index = 1`.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { betweenVariants, byScale, runPlain, type BenchContext } from '../context.js';
import { startDaemons, stopAll, waitConverged, type Daemon } from '../daemons.js';
import { checked, type Figure, type Row, type WorkloadResult } from '../report.js';
import { makeTree } from '../trees.js';

/** Size of each W5 file. */
const FILE_BYTES = 4096;
/** CPU seconds per client per minute allowed when idle (issue 14). */
const CPU_PER_MINUTE = 1;

/** Runs W5 for both protocols. */
export async function runW5(context: BenchContext): Promise<WorkloadResult> {
  const count = byScale(context, { smoke: 20, quick: 2000, full: 10_000 });
  const windowMs = byScale(context, { smoke: 2000, quick: 20_000, full: 60_000 });
  // why: the smoke run only keeps the harness alive; default settings (refresh 30 s) would make it wait.
  const extra: Record<string, string | number> = context.scale === 'smoke' ? { refresh: 2 } : {};
  const source = join(context.scratch, 'source');
  context.log(`W5: writing ${count} files of ${FILE_BYTES} B`);
  await makeTree(source, count, FILE_BYTES);
  const rows: Row[] = [];
  const figures: Figure[] = [];
  for (const variant of ['placeholder', 'index'] as const) {
    const dir = join(context.scratch, `w5-${variant}`);
    const relay = join(dir, 'relay');
    await mkdir(join(dir, 'bob'), { recursive: true });
    await mkdir(relay);
    await runPlain('cp', ['-a', source, join(dir, 'alice')]);
    const keys = { protocol: 'file', 'relay path': relay, ...(variant === 'index' ? { index: 1 } : {}), ...extra };
    context.log(`W5: ${variant}: two daemons converge on ${count} files`);
    await betweenVariants(context);
    const daemons: Daemon[] = await startDaemons(context, dir, { alice: { 'local path': join(dir, 'alice'), ...keys }, bob: { 'local path': join(dir, 'bob'), ...keys } });
    try {
      await waitConverged(join(dir, 'bob'), count, relay, byScale(context, { smoke: 1000, quick: 5000, full: 10_000 }), byScale(context, { smoke: 120_000, quick: 600_000, full: 1_800_000 }), daemons);
      context.log(`W5: ${variant}: measuring ${windowMs / 1000} s of idle time`);
      const before = await Promise.all(daemons.map((d) => d.cpuSeconds()));
      const t0 = performance.now();
      await sleep(windowMs);
      const after = await Promise.all(daemons.map((d) => d.cpuSeconds()));
      const elapsed = performance.now() - t0;
      const peaks = await Promise.all(daemons.map((d) => d.peakRssKiB()));
      daemons.forEach((daemon, i) => {
        const cpu = (after[i] ?? 0) - (before[i] ?? 0);
        rows.push({ label: `${variant}: ${daemon.name} (idle)`, baseline: false, wallMs: elapsed, cpuMs: cpu * 1000, maxRssKiB: peaks[i] ?? Number.NaN, bytesMoved: 0 });
        figures.push(checked('value', `W5 ${variant} ${daemon.name} CPU per minute idle`, (cpu * 60_000) / elapsed, { op: '<=', limit: CPU_PER_MINUTE }, 's'));
      });
    } finally {
      await stopAll(daemons);
    }
  }
  return {
    id: 'W5',
    title: `idle minute: two daemons (${context.scale === 'smoke' ? 'refresh = 2 for the smoke run' : 'default settings'}) converged on ${count} files through a file relay, CPU over ${windowMs / 1000} s`,
    rows,
    figures,
    notes: ['CPU s: user + system of the daemon and its reaped children (/proc/PID/stat) over the window; peak RSS: VmHWM of the daemon'],
  };
}
