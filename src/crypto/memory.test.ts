// Large streams: memory stays bounded and throughput is printed (64 MiB generated, never stored).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBlowfishDecryptStream, createBlowfishEncryptStream } from './blowfish.js';
import { createFernetDecryptStream, createFernetEncryptStream, FernetKey, generateFernetKey } from './fernet.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

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

interface Run {
  seconds: number;
  peakGrowth: number;
  digest: string;
}

async function measure(total: number, transforms: Transform[], inputHash: ReturnType<typeof createHash>): Promise<Run> {
  const outputHash = createHash('sha256');
  const base = process.memoryUsage().rss;
  let peak = base;
  const started = process.hrtime.bigint();
  await pipeline([
    source(total, inputHash),
    ...transforms,
    new Writable({
      write(chunk: Buffer, _e, done) {
        outputHash.update(chunk);
        const rss = process.memoryUsage.rss();
        if (rss > peak) peak = rss;
        done();
      },
    }),
  ]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, peakGrowth: peak - base, digest: outputHash.digest('hex') };
}

const SIZE = 64 * MiB;

test('Fernet: 64 MiB through encrypt and decrypt streams with bounded memory; throughput printed', async () => {
  const key = FernetKey.parse(generateFernetKey());
  const now = 1_700_000_000_000;
  const encryptOnly = await measure(SIZE, [createFernetEncryptStream(key, { now })], createHash('sha256'));
  const inputHash = createHash('sha256');
  const both = await measure(SIZE, [createFernetEncryptStream(key, { now }), createFernetDecryptStream(key)], inputHash);
  assert.equal(both.digest, inputHash.digest('hex'), 'round trip returns the same 64 MiB');
  const decryptSeconds = Math.max(both.seconds - encryptOnly.seconds, 1e-3);
  console.log(
    `fernet 64 MiB: encrypt ${(64 / encryptOnly.seconds).toFixed(0)} MiB/s, decrypt ~${(64 / decryptSeconds).toFixed(0)} MiB/s ` +
      `(encrypt+decrypt ${(64 / both.seconds).toFixed(0)} MiB/s); peak RSS growth ${(both.peakGrowth / MiB).toFixed(1)} MiB ` +
      `(encrypt only ${(encryptOnly.peakGrowth / MiB).toFixed(1)} MiB)`,
  );
  assert.ok(both.peakGrowth < 24 * MiB, `peak RSS growth ${both.peakGrowth} bytes is not far below 64 MiB`);
});

test('Blowfish: 64 MiB through encrypt and decrypt streams with bounded memory; throughput printed', async () => {
  const key = Buffer.from(generateFernetKey());
  const inputHash = createHash('sha256');
  const both = await measure(SIZE, [createBlowfishEncryptStream(key), createBlowfishDecryptStream(key)], inputHash);
  assert.equal(both.digest, inputHash.digest('hex'));
  console.log(
    `blowfish 64 MiB: encrypt+decrypt ${(64 / both.seconds).toFixed(0)} MiB/s (each way ~${((2 * 64) / both.seconds).toFixed(0)} MiB/s); ` +
      `peak RSS growth ${(both.peakGrowth / MiB).toFixed(1)} MiB`,
  );
  assert.ok(both.peakGrowth < 24 * MiB, `peak RSS growth ${both.peakGrowth} bytes is not far below 64 MiB`);
});
