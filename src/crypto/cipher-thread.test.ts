// Fernet on a cipher thread: the same bytes as on one core whatever the hand-over point and the
// chunking, memory moved only when the caller allows it, errors and aborts that stop the thread,
// and readers that get one chunk at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EscaleError } from '../core/errors.js';
import { runningCipherThreads, THREAD_BATCH_BYTES, ThreadedTransform, type CipherStage, type CipherThreadTask } from './cipher-thread.js';
import { chunked as cut, runThrough } from './stream-runs.js';
import { createFernetDecryptStream, createFernetEncryptStream, fernetDecrypt, fernetEncrypt, FernetKey, generateFernetKey } from './fernet.js';

const MiB = 1024 * 1024;
const NOW = 1_700_000_000_123;
const IV = Buffer.alloc(16, 0x5c);

/** Chunks that each own their memory, as a file read stream's do. */
function chunked(data: Buffer, sizes: number[]): Buffer[] {
  return cut(data, sizes, { ownMemory: true });
}

/** Waits until every cipher thread has exited, and fails if one is still running after 5 s. */
async function noThreadLeft(): Promise<void> {
  for (let i = 0; i < 200 && runningCipherThreads() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.equal(runningCipherThreads(), 0, 'a cipher thread outlived its stream');
}

function isIntegrity(error: unknown): boolean {
  return error instanceof EscaleError && error.code === 'Integrity';
}

function sample(size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
  return data;
}

test('threaded streams make the one-shot token byte for byte, whatever the size held before the thread starts and the chunking', { timeout: 120_000 }, async () => {
  const key = FernetKey.parse(generateFernetKey());
  for (const size of [0, 1, 16, 17, 100_003, 3 * MiB + 7]) {
    const plain = sample(size);
    const expected = fernetEncrypt(key, plain, NOW, IV);
    for (const threadFrom of [0, 1, 1000, 65_537]) {
      // why: tiny chunks of the big sample only make the test slow (one stream call per chunk).
      for (const sizes of size > MiB ? [[256 * 1024], [999_999, 5, 4097]] : [[256 * 1024], [1, 7, 13, 4097, 3], [999_999, 5]]) {
        const what = `${size} B, thread from ${threadFrom}, chunks ${sizes.join('/')}`;
        const token = await runThrough(createFernetEncryptStream(key, { now: NOW, iv: IV, threadFrom }), chunked(plain, sizes));
        assert.equal(token.toString('latin1'), expected, what);
        assert.deepEqual(await runThrough(createFernetDecryptStream(key, { threadFrom }), chunked(token, sizes)), plain, what);
      }
    }
  }
  await noThreadLeft();
});

test('tokens made on a thread decrypt on one core and the reverse', async () => {
  const key = FernetKey.parse(generateFernetKey());
  const plain = randomBytes(2 * MiB + 3);
  const threaded = await runThrough(createFernetEncryptStream(key, { now: NOW, threadFrom: 0 }), chunked(plain, [300_000]));
  assert.deepEqual(fernetDecrypt(key, threaded), plain);
  assert.deepEqual(await runThrough(createFernetDecryptStream(key, { threadFrom: Number.POSITIVE_INFINITY }), chunked(threaded, [70_001])), plain);
  const inline = await runThrough(createFernetEncryptStream(key, { now: NOW, threadFrom: Number.POSITIVE_INFINITY }), chunked(plain, [300_000]));
  assert.deepEqual(await runThrough(createFernetDecryptStream(key, { threadFrom: 0 }), chunked(inline, [70_001])), plain);
  await noThreadLeft();
});

test('transferInput moves the memory of chunks that are the only view of it, and never of slices', async () => {
  const key = FernetKey.parse(generateFernetKey());
  const whole = chunked(randomBytes(2 * MiB), [256 * 1024]);
  const parent = randomBytes(512 * 1024);
  const parentCopy = Buffer.from(parent);
  const slices = [parent.subarray(0, 256 * 1024), parent.subarray(256 * 1024)];
  const plain = Buffer.concat([...whole, ...slices]);
  const token = await runThrough(createFernetEncryptStream(key, { now: NOW, threadFrom: 0, transferInput: true }), [...whole, ...slices]);
  assert.deepEqual(fernetDecrypt(key, token), plain, 'the token holds every byte');
  assert.ok(whole.every((chunk) => chunk.length === 0), 'whole-memory chunks were moved to the thread');
  assert.deepEqual(parent, parentCopy, 'slices of a bigger buffer were copied, their memory left alone');

  const kept = chunked(randomBytes(MiB), [256 * 1024]);
  const keptCopy = Buffer.concat(kept);
  await runThrough(createFernetEncryptStream(key, { now: NOW, threadFrom: 0 }), kept);
  assert.deepEqual(Buffer.concat(kept), keptCopy, 'without transferInput the caller keeps its chunks');
  await noThreadLeft();
});

test('tampered, truncated, foreign-key and malformed big tokens fail with Integrity through the thread', { timeout: 60_000 }, async () => {
  const key = FernetKey.parse(generateFernetKey());
  const other = FernetKey.parse(generateFernetKey());
  const token = Buffer.from(fernetEncrypt(key, randomBytes(3 * MiB), NOW));
  const flipped = Buffer.from(token);
  const mid = flipped.length >> 1;
  flipped[mid] = flipped[mid] === 0x41 ? 0x42 : 0x41;
  const cases: Array<[string, Buffer, FernetKey]> = [
    ['one character changed in the middle', flipped, key],
    ['the last third cut off', token.subarray(0, Math.floor((token.length * 2) / 3)), key],
    ['last character cut', token.subarray(0, token.length - 1), key],
    ['wrong key', token, other],
    ['bad version byte', Buffer.concat([Buffer.from('AAAA'), token.subarray(4)]), key],
    ['data after the padding', Buffer.concat([token, Buffer.from('QUJD')]), key],
    ['an invalid character late in the token', Buffer.concat([token.subarray(0, token.length - 5000), Buffer.from('%'), token.subarray(token.length - 4999)]), key],
  ];
  for (const [what, input, useKey] of cases) {
    await assert.rejects(runThrough(createFernetDecryptStream(useKey, { threadFrom: 0 }), chunked(input, [349_528])), (e: unknown) => isIntegrity(e), what);
  }
  await noThreadLeft();
});

/** A threaded transform whose thread is given an unusable task (a 15-byte AES key). */
class BrokenTask extends ThreadedTransform {
  constructor() {
    super(0);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.feed(chunk, false);
    this.settle(done);
  }

  override _flush(done: TransformCallback): void {
    this.finish(done);
  }

  protected task(): CipherThreadTask {
    return { kind: 'fernet-seal', signingKey: new Uint8Array(16), encryptionKey: new Uint8Array(15), head: new Uint8Array(25) };
  }

  protected inlineStage(): CipherStage {
    throw new Error('the test expects a thread');
  }

  protected decided(): void {}

  protected fromStage(parts: Buffer[]): void {
    for (const part of parts) this.output(part);
  }

  protected lastFromStage(parts: Buffer[]): void {
    this.fromStage(parts);
  }
}

test('a failure inside the thread surfaces as an EscaleError with its cause, and the thread stops', async () => {
  await assert.rejects(runThrough(new BrokenTask(), chunked(randomBytes(3 * MiB), [256 * 1024])), (e: unknown) => {
    assert.ok(e instanceof EscaleError, String(e));
    assert.equal(e.code, 'Internal');
    assert.match(e.message, /cipher thread failed/);
    assert.ok(e.cause instanceof Error && /key/i.test(e.cause.message), `the cause is kept: ${String(e.cause)}`);
    return true;
  });
  await noThreadLeft();
});

test('aborting or destroying a stream in the middle stops its thread', async () => {
  const key = FernetKey.parse(generateFernetKey());
  for (const direction of ['encrypt', 'decrypt'] as const) {
    const input = direction === 'encrypt' ? randomBytes(8 * MiB) : Buffer.from(fernetEncrypt(key, randomBytes(8 * MiB), NOW));
    const controller = new AbortController();
    let seen = 0;
    const transform = direction === 'encrypt' ? createFernetEncryptStream(key, { now: NOW, threadFrom: 0 }) : createFernetDecryptStream(key, { threadFrom: 0 });
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        seen += chunk.length;
        if (seen > 2 * MiB) controller.abort();
        done();
      },
    });
    await assert.rejects(pipeline(Readable.from(chunked(input, [256 * 1024]), { objectMode: false }), transform, sink, { signal: controller.signal }), { name: 'AbortError' }, direction);
    assert.ok(transform.destroyed, `${direction}: the transform is destroyed`);
  }
  const broken = createFernetDecryptStream(key, { threadFrom: 0 });
  broken.on('error', () => undefined);
  broken.write(Buffer.from(fernetEncrypt(key, randomBytes(4 * MiB), NOW)));
  broken.destroy(new Error('reader went away'));
  await noThreadLeft();
});

test('a slow reader that takes everything buffered gets one answer at a time (no concatenation), with bounded buffering', { timeout: 60_000 }, async () => {
  const key = FernetKey.parse(generateFernetKey());
  const size = 24 * MiB;
  let sent = 0;
  const source = new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const chunk = randomBytes(256 * 1024);
      sent += chunk.length;
      this.push(chunk);
    },
  });
  const encrypt = createFernetEncryptStream(key, { now: NOW, threadFrom: 0, transferInput: true });
  const piped = pipeline(source, encrypt).catch(() => undefined);
  let largest = 0;
  let buffered = 0;
  let total = 0;
  for await (const chunk of encrypt as AsyncIterable<Buffer>) {
    largest = Math.max(largest, chunk.length);
    buffered = Math.max(buffered, encrypt.readableLength + encrypt.writableLength);
    total += chunk.length;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await piped;
  assert.equal(total, 4 * Math.ceil((57 + 16 * (Math.floor(size / 16) + 1)) / 3), 'the whole token came out');
  // why: one message carries THREAD_BATCH_BYTES of 256 KiB chunks; two answers joined would be twice that.
  assert.ok(largest <= Math.ceil((THREAD_BATCH_BYTES * 4) / 3) + 64, `answers were concatenated: a chunk of ${largest} bytes`);
  assert.ok(buffered <= 4 * MiB, `the stream buffered ${buffered} bytes`);
  await noThreadLeft();
});

test('two threaded streams piped into each other run to the end', { timeout: 60_000 }, async () => {
  const key = FernetKey.parse(generateFernetKey());
  for (let round = 0; round < 3; round++) {
    const plain = randomBytes(12 * MiB);
    const out = await runThrough(createFernetDecryptStream(key, { threadFrom: 0 }), [await runThrough(createFernetEncryptStream(key, { now: NOW, threadFrom: 0 }), chunked(plain, [65_536]))]);
    assert.deepEqual(out, plain);
    const chained: Buffer[] = [];
    await pipeline(
      Readable.from(chunked(plain, [65_536]), { objectMode: false }),
      createFernetEncryptStream(key, { now: NOW, threadFrom: 0 }),
      createFernetDecryptStream(key, { threadFrom: 0 }),
      new Writable({
        write(chunk: Buffer, _e, done) {
          chained.push(chunk);
          done();
        },
      }),
    );
    assert.deepEqual(Buffer.concat(chained), plain);
  }
  await noThreadLeft();
});
