// W3: an idle round on many unchanged files with the checksum cache warm. The relay is in the
// state a finished alice → bob sync leaves (a placeholder per file, pushed by alice, pulled by
// bob, no data); it is written directly with the protocol's codecs, since syncing 100,000 files
// first would dominate the run. Measured: the second round of a client running in one process
// (the daemon's idle round) and a fresh `escale --once` (warm checksum cache on disk), against
// issue 14's targets at 100,000 files (CPU budgets scaled to smaller runs).
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { relPath } from '../../src/core/relpath.js';
import { placeholderPathOf } from '../../src/relay/protocol/layout.js';
import { formatMetadata } from '../../src/relay/protocol/placeholder.js';
import { betweenVariants, byScale, ESCALE_BIN, escaleRound, scaledTarget, writeConfig, type BenchContext } from '../context.js';
import { measure } from '../measure.js';
import { checked, rowOf, type Row, type WorkloadResult } from '../report.js';
import { inParallel, makeTree } from '../trees.js';
import type { RoundFigures } from '../idle-round.js';

/** Size of each W3 file (small: the round must not depend on it). */
const FILE_BYTES = 256;
/** The mtime (seconds) given to every file and written in the placeholders. */
const MTIME_SEC = 1_700_000_000;

/** W3 targets of issue 14, at 100,000 files. */
const FULL_COUNT = 100_000;
/** Peak RSS allowed to the daemon and to `escale --once` at 100,000 files (MiB). */
const RSS_LIMIT_MIB = 250;

/** Runs W3. */
export async function runW3(context: BenchContext): Promise<WorkloadResult> {
  const count = byScale(context, { smoke: 100, quick: 20_000, full: FULL_COUNT });
  const alice = join(context.scratch, 'alice');
  const relay = join(context.scratch, 'relay');
  context.log(`W3: writing ${count} files and their placeholders`);
  await makeTree(alice, count, FILE_BYTES);
  await writePlaceholders(alice, relay);
  const config = await writeConfig(context.scratch, {}, { alice: { 'local path': alice, protocol: 'file', 'relay path': relay } });
  context.log('W3: rounds in one process (first: cold; second: idle, caches warm)');
  await betweenVariants(context);
  const inProcess = await measure('escale rounds (in process)', process.execPath, [join(dirname(ESCALE_BIN), '../../bench/idle-round.js'), config, 'alice', '2'], { scratch: context.scratch });
  if (inProcess.code !== 0) throw new Error(`idle-round failed: ${inProcess.stderr.trim()}`);
  const { rounds, maxRssKiB } = JSON.parse(inProcess.stdout) as { rounds: RoundFigures[]; maxRssKiB: number };
  const [cold, idle] = rounds as [RoundFigures, RoundFigures];
  context.log('W3: escale --once in a new process (checksum cache warm on disk)');
  await betweenVariants(context);
  const once = await escaleRound(context, 'alice --once', config, 'alice');
  const roundRow = (label: string, r: RoundFigures): Row => ({
    label,
    baseline: false,
    wallMs: r.wallMs,
    cpuMs: r.cpuMs,
    maxRssKiB,
    relay: { requests: r.requests, calls: r.calls, bytesRead: r.bytesRead, bytesWritten: r.bytesWritten },
    bytesMoved: 0,
  });
  const idleCpu = scaledTarget(0.5, count, FULL_COUNT);
  const onceCpu = scaledTarget(5, count, FULL_COUNT);
  const notes: string[] = [];
  if (cold.transferred + idle.transferred > 0) notes.push(`the rounds transferred ${cold.transferred + idle.transferred} files; the relay state was not idle`);
  notes.push('the peak RSS of the in-process rows is the whole process (both rounds)');
  return {
    id: 'W3',
    title: `idle round on ${count} unchanged files (${FILE_BYTES} B), file relay with a placeholder per file`,
    rows: [roundRow('first round (cold: hashes, reads placeholders)', cold), roundRow('idle round (daemon, caches warm)', idle), rowOf('escale --once (new process)', [once], { bytesMoved: 0 })],
    figures: [
      checked('value', `W3 idle round CPU${idleCpu.note}`, idle.cpuMs / 1000, { op: '<=', limit: idleCpu.limit }, 's'),
      checked('value', 'W3 idle round relay requests', idle.requests, { op: '<=', limit: 3 }),
      checked('value', 'W3 idle round bytes transferred', idle.bytesRead + idle.bytesWritten, { op: '<=', limit: 0 }, 'B'),
      checked('value', 'W3 daemon peak RSS (both rounds)', maxRssKiB / 1024, { op: '<=', limit: RSS_LIMIT_MIB }, 'MiB'),
      checked('value', `W3 escale --once CPU (new process)${onceCpu.note}`, once.cpuMs / 1000, { op: '<=', limit: onceCpu.limit }, 's'),
      checked('value', 'W3 escale --once relay requests (new process)', once.relay?.requests ?? null, { op: '<=', limit: 10 }),
      checked('value', 'W3 escale --once peak RSS', once.maxRssKiB / 1024, { op: '<=', limit: RSS_LIMIT_MIB }, 'MiB'),
    ],
    notes,
  };
}

/** Writes the placeholder of every file below `root` into `relay`, as after alice pushed and bob pulled; sets the files' mtimes. */
async function writePlaceholders(root: string, relay: string): Promise<void> {
  const jobs: Array<() => Promise<void>> = [];
  const visit = async (dir: string, rel: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        await mkdir(join(relay, childRel), { recursive: true });
        await visit(join(dir, entry.name), childRel);
        continue;
      }
      const full = join(dir, entry.name);
      jobs.push(async () => {
        const checksum = createHash('sha512').update(await readFile(full)).digest('hex');
        await utimes(full, MTIME_SEC, MTIME_SEC);
        const text = formatMetadata({ version: '1.0', pusher: 'alice', timestamp: MTIME_SEC, checksum, pullers: ['bob'] });
        await writeFile(join(relay, placeholderPathOf(relPath(childRel))), text);
      });
    }
  };
  await visit(root, '');
  await inParallel(jobs, 32);
}
