import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { EscaleError } from '../core/errors.js';
import { bzip2Available, bzip2Compress, bzip2CompressBytes, bzip2CompressParallel, bzip2Decompress, bzip2DecompressBytes, bzip2DecompressParallel, segmentLevel } from './bzip2.js';

const MiB = 1024 * 1024;

function code(error: unknown): string | undefined {
  return error instanceof EscaleError ? error.code : undefined;
}

/** Child processes of this test process that are zombies (state Z). */
function psZombies(): string[] {
  try {
    return execFileSync('ps', ['-o', 'stat=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim().startsWith('Z'));
  } catch {
    return []; // ps exits 1 when there is no child at all
  }
}

/** Zombie children left once the killed processes had up to 5 s to be reaped (a loaded machine is slow). */
async function zombiesAfterSettling(): Promise<string[]> {
  const deadline = Date.now() + 5000;
  let zombies = psZombies();
  while (zombies.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    zombies = psZombies();
  }
  return zombies;
}

async function* zeros(total: number): AsyncGenerator<Buffer> {
  const chunk = Buffer.alloc(MiB);
  for (let sent = 0; sent < total; sent += MiB) yield chunk;
}

describe('bzip2 (the bzip2 executable)', () => {
  it('is available on this machine', async () => {
    assert.equal(await bzip2Available(), true);
  });

  it('round-trips random and text data, streaming, as BZh9', async () => {
    const data = Buffer.concat([randomBytes(300_000), Buffer.from('line of text\n'.repeat(50_000))]);
    const compressed = await bzip2CompressBytes(data);
    assert.equal(compressed.subarray(0, 4).toString('latin1'), 'BZh9');
    assert.ok(compressed.length < data.length);
    const back = await bzip2DecompressBytes(compressed, { maxOutputBytes: data.length });
    assert.ok(back.equals(data));
  });

  it('compresses in parallel segments: one stream per segment, in order, read as one by bzip2 and Python', async () => {
    const data = Buffer.concat([randomBytes(250_000), Buffer.from('line of text\n'.repeat(20_000))]);
    const compress = async (input: Buffer, options: Parameters<typeof bzip2CompressParallel>[0]): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      // why: pieces of odd sizes, so that segment ends fall inside written chunks.
      const pieces = Array.from({ length: Math.ceil(input.length / 7777) }, (_, i) => input.subarray(i * 7777, (i + 1) * 7777));
      await pipeline(Readable.from(pieces), bzip2CompressParallel(options), async (source: AsyncIterable<Buffer>) => {
        for await (const c of source) chunks.push(c);
      });
      return Buffer.concat(chunks);
    };
    const multi = await compress(data, { segmentBytes: 100_000, workers: 3 });
    // why: each segment at the level its bytes call for: the random ones at 1, the one half text and the text ones at 9.
    const levels = [...multi.toString('latin1').matchAll(/BZh([1-9])1AY&SY/g)].map((m) => Number(m[1]));
    assert.deepEqual(levels, [1, 1, 9, 9, 9, 9]);
    assert.equal(levels.length, Math.ceil(data.length / 100_000));
    assert.ok((await bzip2DecompressBytes(multi, { maxOutputBytes: data.length })).equals(data));
    const fixed = await compress(data, { segmentBytes: 100_000, incompressibleLevel: 9 });
    assert.equal(fixed.toString('latin1').split('BZh91AY&SY').length - 1, levels.length, 'incompressibleLevel = level: every segment at level 9');
    const python = spawnSync('python3', ['-c', 'import sys,bz2; sys.stdout.buffer.write(bz2.decompress(sys.stdin.buffer.read()))'], { input: multi, maxBuffer: 4 * MiB });
    if (python.status === 0) assert.ok(python.stdout.equals(data), 'Python reads the concatenated streams as one');
    // An input that fits one segment (an empty one too) gives exactly the single-process stream.
    assert.ok((await compress(data, { segmentBytes: data.length })).equals(await bzip2CompressBytes(data)));
    assert.ok((await compress(Buffer.alloc(0), {})).equals(await bzip2CompressBytes(new Uint8Array(0))));
    assert.deepEqual(await zombiesAfterSettling(), []);
  });

  it('picks the level of a segment from the entropy of its bytes: 1 for bytes that do not compress, else the level asked', async () => {
    assert.equal(segmentLevel([randomBytes(200_000)], 9, 1), 1);
    assert.equal(segmentLevel([randomBytes(100_000), randomBytes(100_000)], 6, 2), 2);
    assert.equal(segmentLevel([Buffer.from('line of text\n'.repeat(10_000))], 9, 1), 9);
    // why: order-0 entropy misses order, so a ramp (every byte value equally often) counts as incompressible;
    // that costs little, since its pattern repeats well within level 1's 100 kB blocks (measured: 1.0 % of
    // the input at level 1, 0.2 % at level 9).
    const ramp = Buffer.from(Array.from({ length: 256 * 4000 }, (_, i) => i % 256));
    assert.equal(segmentLevel([ramp], 9, 1), 1);
    const one = (await bzip2CompressBytes(ramp, { level: 1 })).length;
    assert.ok(one < ramp.length / 50, `ramp: level 1 gives ${one} bytes`);
    // random bytes with zero runs (a tar of random files: headers and padding) do not compress either, at any block size
    assert.equal(segmentLevel([randomBytes(50_000), Buffer.alloc(100_000), randomBytes(50_000)], 9, 1), 1);
    // a third random, the rest text
    assert.equal(segmentLevel([randomBytes(50_000), Buffer.from('some text\n'.repeat(10_000))], 9, 1), 9);
    assert.equal(segmentLevel([], 9, 1), 9);
    assert.equal(segmentLevel([randomBytes(1000)], 9, 9), 9);
  });

  it('decompresses multi-stream input in parallel segments, in order, with one output limit, refusing what a sequential reader would stop at', async () => {
    const parts = [randomBytes(700_000), randomBytes(700_000), Buffer.from('text\n'.repeat(100_000)), randomBytes(700_000)];
    const streams = await Promise.all(parts.map((part) => bzip2CompressBytes(part)));
    const whole = Buffer.concat(parts);
    const decompress = async (input: Buffer, maxOutputBytes: number): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      // why: pieces of odd sizes, so that stream starts straddle written chunks.
      const pieces = Array.from({ length: Math.ceil(input.length / 65_537) }, (_, i) => input.subarray(i * 65_537, (i + 1) * 65_537));
      await pipeline(Readable.from(pieces), bzip2DecompressParallel({ maxOutputBytes, workers: 2 }), async (source: AsyncIterable<Buffer>) => {
        for await (const c of source) chunks.push(c);
      });
      return Buffer.concat(chunks);
    };
    assert.ok((await decompress(Buffer.concat(streams), whole.length)).equals(whole));
    assert.equal((await decompress(Buffer.alloc(0), 10)).length, 0);
    // Each segment is under the limit, all of them are not.
    await assert.rejects(decompress(Buffer.concat(streams), whole.length - 1), (e: unknown) => code(e) === 'CorruptRecord' && /exceeds the limit/.test((e as Error).message));
    // bzip2 and Python stop at data after a stream; a later stream must not be read after it.
    const garbled = Buffer.concat([streams[0] as Buffer, Buffer.from('not a stream'), streams[1] as Buffer]);
    assert.ok((await bzip2DecompressBytes(garbled, { maxOutputBytes: whole.length })).equals(parts[0] as Buffer));
    await assert.rejects(decompress(garbled, whole.length), (e: unknown) => code(e) === 'CorruptRecord');
    assert.deepEqual(await zombiesAfterSettling(), []);
  });

  it('reads an empty input as empty, like Python reading a 0-byte index', async () => {
    assert.equal((await bzip2DecompressBytes(new Uint8Array(0), { maxOutputBytes: 10 })).length, 0);
  });

  it('refuses damaged input with CorruptRecord', async () => {
    await assert.rejects(bzip2DecompressBytes(Buffer.from('not bzip2 at all'), { maxOutputBytes: MiB }), (e: unknown) => code(e) === 'CorruptRecord' && /bzip2 exited with status 2/.test((e as Error).message));
    const good = await bzip2CompressBytes(randomBytes(100_000));
    await assert.rejects(bzip2DecompressBytes(good.subarray(0, good.length - 100), { maxOutputBytes: MiB }), (e: unknown) => code(e) === 'CorruptRecord');
  });

  it('stops a bzip2 bomb (100 MiB of zeros, 10 MiB limit) with CorruptRecord and leaves no process', async () => {
    const chunks: Buffer[] = [];
    await pipeline(Readable.from(zeros(100 * MiB)), bzip2Compress(), async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) chunks.push(c);
    });
    const bomb = Buffer.concat(chunks);
    assert.ok(bomb.length < 10_000, `bomb is ${bomb.length} bytes`);
    let seen = 0;
    await assert.rejects(
      pipeline(Readable.from([bomb]), bzip2Decompress({ maxOutputBytes: 10 * MiB }), async (source: AsyncIterable<Buffer>) => {
        for await (const c of source) seen += c.length;
      }),
      (e: unknown) => code(e) === 'CorruptRecord' && /exceeds the limit of 10485760 bytes/.test((e as Error).message),
    );
    assert.ok(seen <= 10 * MiB);
    assert.deepEqual(await zombiesAfterSettling(), []);
  });

  it('fails clearly with Unsupported when the executable is missing', async () => {
    await assert.rejects(bzip2CompressBytes(Buffer.from('x'), { executable: 'no-such-bzip2-here' }), (e: unknown) => code(e) === 'Unsupported' && /not found/.test((e as Error).message) && /apt-get install bzip2/.test((e as EscaleError).details.hint ?? ''));
    assert.equal(await bzip2Available('no-such-bzip2-here'), false);
  });

  it('aborts through the signal and kills the process', async () => {
    const controller = new AbortController();
    const stream = bzip2Decompress({ maxOutputBytes: MiB, signal: controller.signal });
    stream.write(Buffer.from('BZh9'));
    controller.abort();
    await assert.rejects(
      (async () => {
        for await (const _ of stream) void _;
      })(),
      (e: unknown) => code(e) === 'Aborted',
    );
    assert.deepEqual(await zombiesAfterSettling(), []);
  });
});
