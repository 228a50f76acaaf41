// W1: many small files in nested folders, alice → bob through a `file` relay, with the
// placeholder protocol and with `index = 1`; baselines: `rclone copy` twice and `cp -r` twice.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { byScale, EscaleRunError, escaleRound, runPlain, writeConfig, type BenchContext } from '../context.js';
import { measure, type ProcessFigures } from '../measure.js';
import { checked, rowOf, unavailableRow, wallRatio, type Row, type WorkloadResult } from '../report.js';
import { countFiles, makeTree } from '../trees.js';

/** Size of each W1 file. */
const FILE_BYTES = 4096;

/** Runs W1 and its baselines on one freshly written tree. */
export async function runW1(context: BenchContext): Promise<WorkloadResult> {
  const count = byScale(context, { smoke: 40, quick: 2000, full: 10_000 });
  const source = join(context.scratch, 'source');
  context.log(`W1: writing ${count} files of ${FILE_BYTES} B`);
  const bytes = await makeTree(source, count, FILE_BYTES);
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const variant of ['placeholder', 'index'] as const) {
    context.log(`W1: escale ${variant}`);
    rows.push(await escaleTransfer(context, variant, source, count, bytes, { protocol: 'file' }, notes));
  }
  context.log('W1: rclone copy');
  rows.push(await twoHops(context, 'rclone copy ×2', source, count, bytes, (from, to) => measure('rclone copy', 'rclone', ['copy', from, to, '--config', join(context.scratch, 'rclone.conf')], { scratch: context.scratch, env: { AWS_CA_BUNDLE: undefined } })));
  context.log('W1: cp -r');
  rows.push(await twoHops(context, 'cp -r ×2', source, count, bytes, (from, to) => measure('cp -r', 'cp', ['-r', from, to], { scratch: context.scratch })));
  const [placeholder, index, rclone, cp] = rows as [Row, Row, Row, Row];
  return {
    id: 'W1',
    title: `${count} files × 4 KiB in nested folders, alice → bob through a file relay`,
    rows,
    figures: [
      wallRatio('W1 index / rclone copy', index, rclone, { op: '<=', limit: 1.5 }),
      wallRatio('W1 placeholder / rclone copy', placeholder, rclone),
      wallRatio('W1 index / cp -r', index, cp),
      wallRatio('W1 placeholder / cp -r', placeholder, cp),
      checked('value', 'W1 placeholder relay requests per file', placeholder.relay ? placeholder.relay.requests / count : null),
      ...(index.relay ? [checked('value', 'W1 index relay requests per file', index.relay.requests / count)] : []),
    ],
    notes,
  };
}

/**
 * One escale transfer of `source` from alice to bob: alice's `--once` round (push), then bob's
 * (pull), each a separate measured process; checks that bob got every file. `relay` holds the
 * section keys naming the relay (a `file` relay in the scratch folder when only `protocol` is given).
 */
export async function escaleTransfer(context: BenchContext, variant: 'placeholder' | 'index', source: string, count: number, bytes: number, relay: Record<string, string | number>, notes: string[]): Promise<Row> {
  const dir = join(context.scratch, `escale-${variant}-${String(relay['protocol'])}`);
  const alice = join(dir, 'alice');
  const bob = join(dir, 'bob');
  await mkdir(bob, { recursive: true });
  await runPlain('cp', ['-a', source, alice]);
  const target = relay['protocol'] === 'file' ? { 'relay path': join(dir, 'relay'), ...relay } : relay;
  if (relay['protocol'] === 'file') await mkdir(join(dir, 'relay'));
  const extra: Record<string, string | number> = variant === 'index' ? { index: 1 } : {};
  const config = await writeConfig(dir, {}, { alice: { 'local path': alice, ...target, ...extra }, bob: { 'local path': bob, ...target, ...extra } });
  const label = `escale ${variant}`;
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
