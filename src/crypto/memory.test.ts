// Large streams: memory stays bounded (64 MiB generated, never stored), on one core and with
// cipher threads, and throughput is printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createBlowfishDecryptStream, createBlowfishEncryptStream } from './blowfish.js';
import { runningCipherThreads } from './cipher-thread.js';
import { createFernetDecryptStream, createFernetEncryptStream, FernetKey, generateFernetKey } from './fernet.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const SIZE = 64 * MiB;
const WARM_UP = 8 * MiB;

// why: dead chunks are external memory that V8 frees lazily, and V8's young generation grows to its
// maximum under heavy allocation, so raw RSS growth from the start mostly measures GC timing. The
// bound that matters is that memory stops growing: with a collection every 8 MiB, RSS after an
// 8 MiB warm-up is compared with the peak over the remaining 56 MiB. Both figures are printed.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const PATTERN = randomBytes(CHUNK);

/** A readable of `total` bytes in 64 KiB chunks (a random block stamped with its index), hashing what it emits. */
function source(total: number, hash: ReturnType<typeof createHash>): Readable {
  let sent = 0;
  let index = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const chunk = Buffer.from(PATTERN.subarray(0, Math.min(CHUNK, total - sent)));
      // why: cheap to generate, so the figures measure the cipher; the stamp makes chunks differ.
      chunk.writeUInt32BE(index++, 0);
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

interface Memory {
  fromStart: number;
  afterWarmUp: number;
}

/** Runs `total` bytes through `transforms`; returns peak RSS growth and whether output equals input. */
async function measure(transforms: Transform[]): Promise<Memory> {
  const inputHash = createHash('sha256');
  const outputHash = createHash('sha256');
  gc();
  const start = process.memoryUsage.rss();
  let peak = start;
  let warm = 0;
  let warmPeak = 0;
  let written = 0;
  await pipeline([
    source(SIZE, inputHash),
    ...transforms,
    new Writable({
      write(chunk: Buffer, _e, done) {
        outputHash.update(chunk);
        written += chunk.length;
        const rss = process.memoryUsage.rss();
        peak = Math.max(peak, rss);
        if (warm !== 0) warmPeak = Math.max(warmPeak, rss);
        if (written % WARM_UP < chunk.length) {
          gc();
          if (warm === 0) {
            warm = process.memoryUsage.rss();
            warmPeak = warm;
          }
        }
        done();
      },
    }),
  ]);
  assert.equal(outputHash.digest('hex'), inputHash.digest('hex'), 'the round trip returns the same 64 MiB');
  return { fromStart: peak - start, afterWarmUp: warmPeak - warm };
}

/** Waits until every cipher thread has exited (they stop at the end of their stream). */
async function noCipherThreadLeft(): Promise<void> {
  for (let i = 0; i < 200 && runningCipherThreads() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.equal(runningCipherThreads(), 0, 'no cipher thread outlives its stream');
}

/** What two streams on cipher threads hold besides one core's: the threads (isolates, ~20 MiB measured) and their pipelines. */
const THREADED = { fixed: 24 * MiB, pipeline: 8 * MiB };

// why: with threads, each stream keeps a batch, the batches in flight and their answers (a few
// MiB each) at once; the bounds grow by that, still far below the 56 MiB a leak would add.
function check(name: string, memory: Memory, extra = { fixed: 0, pipeline: 0 }): void {
  console.log(
    `${name} 64 MiB encrypt+decrypt: peak RSS growth ${(memory.fromStart / MiB).toFixed(1)} MiB from the start, ` +
      `${(memory.afterWarmUp / MiB).toFixed(1)} MiB over the last 56 MiB`,
  );
  assert.ok(memory.afterWarmUp < 8 * MiB + extra.pipeline, `${name}: memory kept growing (${memory.afterWarmUp} bytes)`);
  assert.ok(memory.fromStart < 48 * MiB + extra.fixed, `${name}: peak RSS growth ${memory.fromStart} bytes is not below the data size`);
}

for (const [mode, threadFrom] of [['one core', Number.POSITIVE_INFINITY], ['cipher threads', 0]] as const) {
  test(`Fernet (${mode}): 64 MiB through encrypt and decrypt streams with bounded memory`, async () => {
    const key = FernetKey.parse(generateFernetKey());
    const memory = await measure([createFernetEncryptStream(key, { now: 1_700_000_000_000, threadFrom }), createFernetDecryptStream(key, { threadFrom })]);
    check(`fernet (${mode})`, memory, threadFrom === 0 ? THREADED : undefined);
    await noCipherThreadLeft();
  });
}

test('Blowfish: 64 MiB through encrypt and decrypt streams with bounded memory', async () => {
  const key = Buffer.from(generateFernetKey());
  check('blowfish', await measure([createBlowfishEncryptStream(key), createBlowfishDecryptStream(key)]));
});

/** Times one transform over in-memory chunks; returns the output chunks and MiB/s. */
async function timed(transform: Transform, chunks: Buffer[]): Promise<[Buffer[], number]> {
  const out: Buffer[] = [];
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const started = process.hrtime.bigint();
  await pipeline(Readable.from(chunks, { objectMode: false }), transform, new Writable({
    write(chunk: Buffer, _e, done) {
      out.push(chunk);
      done();
    },
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return [out, bytes / MiB / seconds];
}

test('throughput (printed; 16 MiB in 64 KiB chunks, in memory)', async () => {
  const plain = Array.from({ length: 256 }, (_, i) => {
    const chunk = Buffer.from(PATTERN);
    chunk.writeUInt32BE(i, 0);
    return chunk;
  });
  const fernetKey = FernetKey.parse(generateFernetKey());
  const [token, fernetEncrypt] = await timed(createFernetEncryptStream(fernetKey, { now: 0, threadFrom: Number.POSITIVE_INFINITY }), plain);
  const [fernetPlain, fernetDecrypt] = await timed(createFernetDecryptStream(fernetKey, { threadFrom: Number.POSITIVE_INFINITY }), token);
  assert.deepEqual(Buffer.concat(fernetPlain), Buffer.concat(plain));
  const [threadToken, threadEncrypt] = await timed(createFernetEncryptStream(fernetKey, { now: 0, threadFrom: 0 }), plain);
  const [threadPlain, threadDecrypt] = await timed(createFernetDecryptStream(fernetKey, { threadFrom: 0 }), threadToken);
  assert.deepEqual(Buffer.concat(threadPlain), Buffer.concat(plain));
  const blowfishKey = Buffer.from(generateFernetKey());
  const [data, blowfishEncrypt] = await timed(createBlowfishEncryptStream(blowfishKey), plain);
  const [blowfishPlain, blowfishDecrypt] = await timed(createBlowfishDecryptStream(blowfishKey), data);
  assert.deepEqual(Buffer.concat(blowfishPlain), Buffer.concat(plain));
  const f = (n: number): string => n.toFixed(0);
  console.log(`throughput: fernet encrypt ${f(fernetEncrypt)} MiB/s, decrypt ${f(fernetDecrypt)} MiB/s (plaintext MiB; with cipher threads ${f(threadEncrypt)} / ${f(threadDecrypt)}); ` +
    `blowfish encrypt ${f(blowfishEncrypt)} MiB/s, decrypt ${f(blowfishDecrypt)} MiB/s`);
});
