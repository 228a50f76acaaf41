// W2: one big file with `encryption = fernet`, placeholder protocol, alice → bob through a `file`
// relay on disk and (control rows) on tmpfs; baseline: `cp` plus `sha512sum` of the same file
// (one copy with an integrity check, which is what each escale round does, plus encryption).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyFile } from '../../src/local/key-file.js';
import { betweenVariants, byScale, escaleRound, tmpfsFolder, writeConfig, type BenchContext } from '../context.js';
import { measure, type ProcessFigures } from '../measure.js';
import { checked, rowOf, unavailableRow, type Row, type WorkloadResult } from '../report.js';
import { makeBigFile } from '../trees.js';

const MIB = 1024 * 1024;
/** Peak RSS allowed to every escale process (MiB). */
const RSS_LIMIT_MIB = 150;
/** Throughput of each round against cp + sha512sum (issue 13). */
const THROUGHPUT_TARGET = 0.8;

/** Runs W2: push and pull of one big encrypted file (relay on disk, then on tmpfs), then the cp + sha512sum baseline. */
export async function runW2(context: BenchContext): Promise<WorkloadResult> {
  const mib = byScale(context, { smoke: 4, quick: 256, full: 1024 });
  const bytes = mib * MIB;
  const alice = join(context.scratch, 'alice');
  await mkdir(alice, { recursive: true });
  const big = join(alice, 'big.bin');
  context.log(`W2: writing ${mib} MiB`);
  await makeBigFile(big, bytes);
  const key = join(context.scratch, 'fernet.key');
  await generateKeyFile(key, 'fernet');
  const notes: string[] = [];
  const disk = await roundTrip(context, 'disk', join(context.scratch, 'relay'), alice, big, key, notes);
  const rows: Row[] = [];
  const tmpfs = await tmpfsFolder(context, Math.ceil((mib * 4) / 3) + 64);
  let onTmpfs: { push: ProcessFigures; pull: ProcessFigures } | undefined;
  if ('unavailable' in tmpfs) {
    rows.push(unavailableRow('escale push, pull (relay on tmpfs)', tmpfs.unavailable));
  } else {
    try {
      onTmpfs = await roundTrip(context, 'tmpfs', tmpfs.path, alice, big, key, notes);
      notes.push(`tmpfs rows: the relay is in ${tmpfs.how}; local folders stay on disk`);
    } finally {
      await tmpfs.remove();
    }
  }
  context.log('W2: cp + sha512sum');
  await betweenVariants(context);
  const cp = await measure('cp', 'cp', [big, join(context.scratch, 'copy.bin')], { scratch: context.scratch });
  const sum = await measure('sha512sum', 'sha512sum', [big], { scratch: context.scratch });
  rows.unshift(rowOf('escale push (alice)', [disk.push], { bytesMoved: bytes }), rowOf('escale pull (bob)', [disk.pull], { bytesMoved: bytes }));
  if (onTmpfs) rows.push(rowOf('escale push (relay on tmpfs)', [onTmpfs.push], { bytesMoved: bytes }), rowOf('escale pull (relay on tmpfs)', [onTmpfs.pull], { bytesMoved: bytes }));
  rows.push(rowOf('cp + sha512sum', [cp, sum], { baseline: true, bytesMoved: bytes }));
  const baseline = cp.wallMs + sum.wallMs;
  const throughput = (ms: number): number => bytes / MIB / (ms / 1000);
  notes.push(`throughput MiB/s: push ${throughput(disk.push.wallMs).toFixed(0)}, pull ${throughput(disk.pull.wallMs).toFixed(0)}, cp + sha512sum ${throughput(baseline).toFixed(0)}`);
  return {
    id: 'W2',
    title: `one ${mib} MiB file, encryption = fernet, placeholder protocol, file relay`,
    rows,
    figures: [
      checked('ratio', 'W2 push throughput / cp + sha512sum', baseline / disk.push.wallMs, { op: '>=', limit: THROUGHPUT_TARGET }),
      checked('ratio', 'W2 pull throughput / cp + sha512sum', baseline / disk.pull.wallMs, { op: '>=', limit: THROUGHPUT_TARGET }),
      checked('value', 'W2 peak RSS of escale push', disk.push.maxRssKiB / 1024, { op: '<=', limit: RSS_LIMIT_MIB }, 'MiB'),
      checked('value', 'W2 peak RSS of escale pull', disk.pull.maxRssKiB / 1024, { op: '<=', limit: RSS_LIMIT_MIB }, 'MiB'),
      checked('ratio', 'W2 push (relay on tmpfs) throughput / cp + sha512sum', onTmpfs ? baseline / onTmpfs.push.wallMs : null),
      checked('ratio', 'W2 pull (relay on tmpfs) throughput / cp + sha512sum', onTmpfs ? baseline / onTmpfs.pull.wallMs : null),
    ],
    notes,
  };
}

/**
 * alice pushes `big` to the relay at `relay`, bob pulls it into a fresh folder; each client with a
 * fresh cache (so the push hashes the file, as a first push does). Notes a copy that differs.
 */
async function roundTrip(context: BenchContext, tag: string, relay: string, alice: string, big: string, key: string, notes: string[]): Promise<{ push: ProcessFigures; pull: ProcessFigures }> {
  const dir = join(context.scratch, `w2-${tag}`);
  const bob = join(dir, 'bob');
  await Promise.all([relay, bob].map((d) => mkdir(d, { recursive: true })));
  const keys = { protocol: 'file', 'relay path': relay, encryption: 'fernet', passphrase: key };
  const config = await writeConfig(dir, {}, { alice: { 'local path': alice, ...keys }, bob: { 'local path': bob, ...keys } });
  context.log(`W2: escale push (relay on ${tag})`);
  await betweenVariants(context);
  const push = await escaleRound(context, `alice push ${tag}`, config, 'alice');
  context.log(`W2: escale pull (relay on ${tag})`);
  await betweenVariants(context);
  const pull = await escaleRound(context, `bob pull ${tag}`, config, 'bob');
  const copy = join(bob, 'big.bin');
  const arrived = await stat(copy).then((s) => s.size, () => -1);
  if (arrived !== (await stat(big)).size || (await sha256(copy)) !== (await sha256(big))) notes.push(`relay on ${tag}: bob's copy differs from alice's (size ${arrived})`);
  await rm(dir, { recursive: true, force: true });
  await rm(relay, { recursive: true, force: true });
  return { push, pull };
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
