// Child of big-file.test.ts, run under `ulimit -f`: writes a download bigger than the limit with
// the atomic writer, so that a real write(2) fails (EFBIG) while other writes are in flight, and
// prints what happened as JSON.
import { readdir, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { EscaleError } from '../../src/core/errors.js';
import { relPath } from '../../src/core/relpath.js';
import { writeFileAtomically } from '../../src/local/local-writer.js';

const [root, megabytes] = process.argv.slice(2);
if (root === undefined || megabytes === undefined) throw new Error('usage: big-file-child ROOT MEGABYTES');
async function* chunks(): AsyncGenerator<Buffer> {
  for (let i = 0; i < Number(megabytes) * 4; i++) yield Buffer.alloc(256 * 1024, i & 0xff);
}
let outcome: Record<string, unknown>;
try {
  await writeFileAtomically({ root, path: relPath('f'), source: Readable.from(chunks()), algorithm: 'sha512', expectedPrior: { size: 3, mtimeMs: (await import('node:fs')).statSync(`${root}/f`).mtimeMs } });
  outcome = { written: true };
} catch (error) {
  const cause = error instanceof EscaleError ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  outcome = { code: error instanceof EscaleError ? error.code : String(error), cause: cause?.code };
}
process.stdout.write(`${JSON.stringify({ ...outcome, files: (await readdir(root)).sort(), old: await readFile(`${root}/f`, 'utf8') })}\n`);
