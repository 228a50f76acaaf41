// Test data for the workloads: trees of small files in nested folders and single big files,
// written with random content (so no layer can compress or deduplicate them).
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Files per leaf folder of `makeTree`. */
const FILES_PER_FOLDER = 100;

/**
 * Writes `count` files of `size` random bytes below `root`, 100 per folder, in two levels of
 * folders (`d03/e07/f000123.bin`). Returns the total number of bytes.
 */
export async function makeTree(root: string, count: number, size: number): Promise<number> {
  const leaves = Math.ceil(count / FILES_PER_FOLDER);
  const fanout = Math.max(1, Math.ceil(Math.sqrt(leaves)));
  const jobs: Array<() => Promise<void>> = [];
  for (let i = 0; i < count; i += 1) {
    const leaf = Math.floor(i / FILES_PER_FOLDER);
    const dir = join(root, `d${String(Math.floor(leaf / fanout)).padStart(2, '0')}`, `e${String(leaf % fanout).padStart(2, '0')}`);
    if (i % FILES_PER_FOLDER === 0) await mkdir(dir, { recursive: true });
    jobs.push(() => writeFile(join(dir, `f${String(i).padStart(6, '0')}.bin`), randomBytes(size)));
  }
  await inParallel(jobs, 32);
  return count * size;
}

/** Writes one file of `bytes` random bytes, streamed 1 MiB at a time. */
export async function makeBigFile(path: string, bytes: number): Promise<void> {
  const chunk = 1024 * 1024;
  const chunks = (function* () {
    for (let done = 0; done < bytes; done += chunk) yield randomBytes(Math.min(chunk, bytes - done));
  })();
  await pipeline(Readable.from(chunks), createWriteStream(path));
}

/** Number of regular files below `root`, hidden names (escale's own) left out. */
export async function countFiles(root: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    if (entry.isDirectory()) total += await countFiles(join(root, entry.name));
    else if (entry.isFile()) total += 1;
  }
  return total;
}

/** Runs the jobs with at most `width` at once. */
export async function inParallel(jobs: ReadonlyArray<() => Promise<void>>, width: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next] as () => Promise<void>;
      next += 1;
      await job();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
}
