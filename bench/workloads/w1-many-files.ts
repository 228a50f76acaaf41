// W1: many small files in nested folders, alice → bob through a `file` relay, with the
// placeholder protocol and with `index = 1`, the relay on disk and (control rows) on tmpfs;
// baselines: `rclone copy` twice and `cp -r` twice.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { betweenVariants, byScale, EscaleRunError, escaleRound, runPlain, scaledTarget, tmpfsFolder, writeConfig, type BenchContext } from '../context.js';
import { measure, type ProcessFigures } from '../measure.js';
import { checked, rowOf, unavailableRow, wallRatio, type Row, type WorkloadResult } from '../report.js';
import { countFiles, makeTree } from '../trees.js';

/** Size of each W1 file. */
const FILE_BYTES = 4096;

/** W1 targets of issue 13, at 10,000 files (CPU budgets are scaled to smaller runs). */
const FULL_COUNT = 10_000;

/** Runs W1 and its baselines on one freshly written tree; the relay on disk, and on tmpfs as a control. */
export async function runW1(context: BenchContext): Promise<WorkloadResult> {
  const count = byScale(context, { smoke: 40, quick: 2000, full: FULL_COUNT });
  const source = join(context.scratch, 'source');
  context.log(`W1: writing ${count} files of ${FILE_BYTES} B`);
  const bytes = await makeTree(source, count, FILE_BYTES);
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const variant of ['placeholder', 'index'] as const) {
    context.log(`W1: escale ${variant}`);
    await betweenVariants(context);
    rows.push(await escaleTransfer(context, variant, source, count, bytes, { protocol: 'file' }, notes));
  }
  const tmpfs = await tmpfsFolder(context, Math.max(64, Math.ceil((bytes * 3) / (1024 * 1024))));
  if ('unavailable' in tmpfs) {
    for (const variant of ['placeholder', 'index'] as const) rows.push(unavailableRow(`escale ${variant} (relay on tmpfs)`, tmpfs.unavailable));
  } else {
    notes.push(`tmpfs rows: the relay is in ${tmpfs.how}; local folders stay on disk`);
    try {
      for (const variant of ['placeholder', 'index'] as const) {
        context.log(`W1: escale ${variant}, relay on tmpfs`);
        await betweenVariants(context);
        const relay = join(tmpfs.path, variant);
        await mkdir(relay);
        rows.push(await escaleTransfer(context, variant, source, count, bytes, { protocol: 'file', 'relay path': relay }, notes, `escale ${variant} (relay on tmpfs)`));
      }
    } finally {
      await tmpfs.remove();
    }
  }
  context.log('W1: rclone copy');
  await betweenVariants(context);
  rows.push(await twoHops(context, 'rclone copy ×2', source, count, bytes, (from, to) => measure('rclone copy', 'rclone', ['copy', from, to, '--config', join(context.scratch, 'rclone.conf')], { scratch: context.scratch, env: { AWS_CA_BUNDLE: undefined } })));
  context.log('W1: cp -r');
  await betweenVariants(context);
  rows.push(await twoHops(context, 'cp -r ×2', source, count, bytes, (from, to) => measure('cp -r', 'cp', ['-r', from, to], { scratch: context.scratch })));
  const [placeholder, index, placeholderTmpfs, indexTmpfs, rclone, cp] = rows as [Row, Row, Row, Row, Row, Row];
  const cpu = (row: Row): number | null => (row.cpuMs === undefined ? null : row.cpuMs / 1000);
  const perFile = (row: Row): number | null => (row.relay ? row.relay.requests / count : null);
  const placeholderCpu = scaledTarget(25, count, FULL_COUNT);
  const indexCpu = scaledTarget(10, count, FULL_COUNT);
  return {
    id: 'W1',
    title: `${count} files × 4 KiB in nested folders, alice → bob through a file relay`,
    rows,
    figures: [
      wallRatio('W1 placeholder / rclone copy', placeholder, rclone, { op: '<=', limit: 6 }),
      checked('value', 'W1 placeholder relay requests per file', perFile(placeholder), { op: '<=', limit: 11 }),
      checked('value', `W1 placeholder CPU (both processes)${placeholderCpu.note}`, cpu(placeholder), { op: '<=', limit: placeholderCpu.limit }, 's'),
      wallRatio('W1 index / rclone copy', index, rclone, { op: '<=', limit: 3 }),
      checked('value', `W1 index CPU (both processes)${indexCpu.note}`, cpu(index), { op: '<=', limit: indexCpu.limit }, 's'),
      checked('value', 'W1 index peak RSS', index.maxRssKiB === undefined ? null : index.maxRssKiB / 1024, { op: '<=', limit: 100 }, 'MiB'),
      checked('value', 'W1 index relay requests per file', perFile(index)),
      wallRatio('W1 placeholder (relay on tmpfs) / rclone copy', placeholderTmpfs, rclone),
      wallRatio('W1 index (relay on tmpfs) / rclone copy', indexTmpfs, rclone),
      wallRatio('W1 placeholder / cp -r', placeholder, cp),
      wallRatio('W1 index / cp -r', index, cp),
    ],
    notes,
  };
}

/**
 * One escale transfer of `source` from alice to bob: alice's `--once` round (push), then bob's
 * (pull), each a separate measured process; checks that bob got every file. `relay` holds the
 * section keys naming the relay (a `file` relay in the scratch folder when only `protocol` is given).
 */
export async function escaleTransfer(context: BenchContext, variant: 'placeholder' | 'index', source: string, count: number, bytes: number, relay: Record<string, string | number>, notes: string[], label = `escale ${variant}`): Promise<Row> {
  const dir = join(context.scratch, `${label.replace(/[^A-Za-z0-9]+/g, '-')}-${String(relay['protocol'])}`);
  const alice = join(dir, 'alice');
  const bob = join(dir, 'bob');
  await mkdir(bob, { recursive: true });
  await runPlain('cp', ['-a', source, alice]);
  const target = relay['protocol'] === 'file' ? { 'relay path': join(dir, 'relay'), ...relay } : relay;
  if (relay['protocol'] === 'file' && relay['relay path'] === undefined) await mkdir(join(dir, 'relay'));
  const extra: Record<string, string | number> = variant === 'index' ? { index: 1 } : {};
  const config = await writeConfig(dir, {}, { alice: { 'local path': alice, ...target, ...extra }, bob: { 'local path': bob, ...target, ...extra } });
  let push: ProcessFigures;
  try {
    push = await escaleRound(context, 'alice push', config, 'alice');
  } catch (error) {
    if (variant === 'index' && error instanceof EscaleRunError && error.notAvailable) return unavailableRow(label, 'index relays are not wired in this build yet');
    throw error;
  }
  const pull = await escaleRound(context, 'bob pull', config, 'bob');
  const got = await countFiles(bob);
  if (got !== count) notes.push(`${label}: bob has ${got} of ${count} files after one round each`);
  return rowOf(label, [push, pull], { bytesMoved: 2 * bytes });
}

/** A baseline of two copies, source → relay → destination, each measured. */
export async function twoHops(context: BenchContext, label: string, source: string, count: number, bytes: number, copy: (from: string, to: string) => Promise<ProcessFigures>): Promise<Row> {
  const dir = join(context.scratch, label.replace(/[^A-Za-z0-9]+/g, '-'));
  await mkdir(dir, { recursive: true });
  await writeFile(join(context.scratch, 'rclone.conf'), '');
  const first = await copy(source, join(dir, 'relay'));
  const second = await copy(join(dir, 'relay'), join(dir, 'bob'));
  for (const step of [first, second]) if (step.code !== 0) throw new Error(`${label} failed: ${step.stderr.trim()}`);
  const got = await countFiles(join(dir, 'bob'));
  if (got !== count) throw new Error(`${label}: ${got} of ${count} files arrived`);
  return rowOf(label, [first, second], { baseline: true, bytesMoved: 2 * bytes });
}
