// Test helpers (used only by the tests): push chunks through a cipher stream and collect what
// comes out; cut data into chunks of given sizes.
import { Readable, Writable } from 'node:stream';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Pushes `chunks` through `transform` and collects the output. */
export async function runThrough(transform: Transform, chunks: readonly Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks, { objectMode: false }), transform, new Writable({
    write(chunk: Buffer, _e, done) {
      out.push(chunk);
      done();
    },
  }));
  return Buffer.concat(out);
}

/**
 * Splits `data` into chunks whose sizes cycle through `sizes`: views of `data`, or with
 * `ownMemory` copies that each own their memory (as a file read stream's chunks do).
 */
export function chunked(data: Buffer, sizes: readonly number[], options: { ownMemory?: boolean } = {}): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length] as number;
    const view = data.subarray(at, at + size);
    if (options.ownMemory) {
      const copy = Buffer.allocUnsafeSlow(view.length);
      view.copy(copy);
      out.push(copy);
    } else {
      out.push(view);
    }
    at += size;
  }
  return out;
}
