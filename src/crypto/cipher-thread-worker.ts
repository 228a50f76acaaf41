// The code of a cipher thread (started by cipher-thread.ts): runs one task over the chunks it is
// sent, answers each message with its output, and reports the first error and stops.
import { parentPort, workerData } from 'node:worker_threads';
import { EscaleError } from '../core/errors.js';
import { ownsWholeMemory, packParts, partsOf, type CipherStage, type CipherThreadTask, type FromCipherThread, type ToCipherThread } from './cipher-thread.js';
import { FernetOpener, FernetSealer } from './fernet.js';

function stageOf(task: CipherThreadTask): CipherStage {
  switch (task.kind) {
    case 'fernet-seal':
      return new FernetSealer(task.signingKey, task.encryptionKey, task.head);
    case 'fernet-open':
      return new FernetOpener(task.signingKey, task.encryptionKey);
  }
}

function reply(kind: 'data' | 'end', output: Buffer[], spent: ArrayBuffer[] = []): void {
  const body = packParts(output, output.map(ownsWholeMemory));
  const moved = new Set<ArrayBuffer>(body.parts);
  const back = spent.filter((buffer) => buffer.byteLength > 0 && !moved.has(buffer));
  parentPort?.postMessage({ kind, ...body, spent: back } satisfies FromCipherThread, [...body.parts, ...back]);
}

function report(error: unknown): void {
  const escale = error instanceof EscaleError ? error : undefined;
  const cause = escale ? escale.details.cause : error;
  const message: FromCipherThread = {
    kind: 'error',
    code: escale?.code ?? 'Internal',
    message: escale?.message ?? `the cipher thread failed: ${error instanceof Error ? error.message : String(error)}`,
  };
  try {
    parentPort?.postMessage(cause === undefined ? message : { ...message, cause });
  } catch {
    // why: a cause that cannot be copied between threads is left out; the code and message stay.
    parentPort?.postMessage(message);
  }
}

if (parentPort !== null) {
  let stage: CipherStage | undefined;
  let failed = false;
  parentPort.on('message', (message: ToCipherThread) => {
    if (failed) return;
    try {
      stage ??= stageOf(workerData as CipherThreadTask);
      if (message.kind === 'data') {
        reply('data', partsOf(message).flatMap((chunk) => stage!.update(chunk)), message.parts);
      } else {
        reply('end', stage.final(Buffer.from(message.trailer ?? [])));
      }
    } catch (error) {
      failed = true;
      report(error);
    }
  });
}
