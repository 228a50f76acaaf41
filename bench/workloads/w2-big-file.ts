// W2: one big file with `encryption = fernet`, placeholder protocol, alice → bob through a `file`
// relay; baseline: `cp` plus `sha512sum` of the same file (one copy with an integrity check,
// which is what each escale round does, plus encryption).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyFile } from '../../src/crypto/key-file.js';
import { betweenVariants, byScale, escaleRound, writeConfig, type BenchContext } from '../context.js';
import { measure } from '../measure.js';
import { checked, rowOf, type WorkloadResult } from '../report.js';
import { makeBigFile } from '../trees.js';

const MIB = 1024 * 1024;
/** Peak RSS allowed to every escale process (MiB). */
const RSS_LIMIT_MIB = 150;
/** Throughput of each round against cp + sha512sum (issue 13). */
const THROUGHPUT_TARGET = 0.8;

/** Runs W2: push and pull of one big encrypted file, then the cp + sha512sum baseline. */
export async function runW2(context: BenchContext): Promise<WorkloadResult> {
  const mib = byScale(context, { smoke: 4, quick: 256, full: 1024 });
  const bytes = mib * MIB;
  const alice = join(context.scratch, 'alice');
  const bob = join(context.scratch, 'bob');
  const relay = join(context.scratch, 'relay');
  await Promise.all([alice, bob, relay].map((d) => mkdir(d, { recursive: true })));
  const big = join(alice, 'big.bin');
  context.log(`W2: writing ${mib} MiB`);
  await makeBigFile(big, bytes);
  const key = join(context.scratch, 'fernet.key');
  await generateKeyFile(key, 'fernet');
  const keys = { protocol: 'file', 'relay path': relay, encryption: 'fernet', passphrase: key };
  const config = await writeConfig(context.scratch, {}, { alice: { 'local path': alice, ...keys }, bob: { 'local path': bob, ...keys } });
  context.log('W2: escale push');
  await betweenVariants(context);
  const push = await escaleRound(context, 'alice push', config, 'alice');
  context.log('W2: escale pull');
  await betweenVariants(context);
  const pull = await escaleRound(context, 'bob pull', config, 'bob');
  const notes: string[] = [];
  const arrived = await stat(join(bob, 'big.bin')).then((s) => s.size, () => -1);
  if (arrived !== bytes || (await sha256(join(bob, 'big.bin'))) !== (await sha256(big))) notes.push(`bob's copy differs from alice's (size ${arrived})`);
  await rm(relay, { recursive: true, force: true });
  await rm(bob, { recursive: true, force: true });
  context.log('W2: cp + sha512sum');
  await betweenVariants(context);
  const cp = await measure('cp', 'cp', [big, join(context.scratch, 'copy.bin')], { scratch: context.scratch });
  const sum = await measure('sha512sum', 'sha512sum', [big], { scratch: context.scratch });
  const rows = [
    rowOf('escale push (alice)', [push], { bytesMoved: bytes }),
    rowOf('escale pull (bob)', [pull], { bytesMoved: bytes }),
    rowOf('cp + sha512sum', [cp, sum], { baseline: true, bytesMoved: bytes }),
  ];
  const baseline = cp.wallMs + sum.wallMs;
  const throughput = (ms: number): number => bytes / MIB / (ms / 1000);
  notes.push(`throughput MiB/s: push ${throughput(push.wallMs).toFixed(0)}, pull ${throughput(pull.wallMs).toFixed(0)}, cp + sha512sum ${throughput(baseline).toFixed(0)}`);
  return {
    id: 'W2',
    title: `one ${mib} MiB file, encryption = fernet, placeholder protocol, file relay`,
    rows,
    figures: [
      checked('ratio', 'W2 push throughput / cp + sha512sum', baseline / push.wallMs, { op: '>=', limit: THROUGHPUT_TARGET }),
      checked('ratio', 'W2 pull throughput / cp + sha512sum', baseline / pull.wallMs, { op: '>=', limit: THROUGHPUT_TARGET }),
      checked('value', 'W2 peak RSS of escale push', push.maxRssKiB / 1024, { op: '<=', limit: RSS_LIMIT_MIB }, 'MiB'),
      checked('value', 'W2 peak RSS of escale pull', pull.maxRssKiB / 1024, { op: '<=', limit: RSS_LIMIT_MIB }, 'MiB'),
    ],
    notes,
  };
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
