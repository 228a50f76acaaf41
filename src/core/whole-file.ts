import { Readable } from 'node:stream';

/**
 * A stream over content already read in full (a small file read in one go): readers that want the
 * bytes take them with `takeWhole` instead of reading the stream chunk by chunk. It is an ordinary
 * readable stream for every other reader.
 */
export class WholeFile extends Readable {
  constructor(readonly content: Buffer) {
    super();
    this.push(content);
    this.push(null);
  }

  override _read(): void {
    // why: everything was pushed at construction.
  }
}

/**
 * The bytes of `stream` when it is a WholeFile nobody has read from yet, and the stream is then
 * released (destroyed, so that whoever waits for it to close, a connection limit, goes on);
 * undefined for any other stream, which is left alone.
 */
export function takeWhole(stream: Readable | AsyncIterable<Uint8Array>): Buffer | undefined {
  if (!(stream instanceof WholeFile) || stream.readableDidRead || stream.destroyed) return undefined;
  stream.destroy();
  return stream.content;
}
