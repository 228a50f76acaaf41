import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import { relPath } from '../core/relpath.js';
import { AccessStore } from '../local/access.js';
import { ChecksumCache } from '../local/checksum-cache.js';
import { FileFilter } from '../local/filter.js';
import { LocalRepository } from './local-repository.js';

async function repository(t: { after(fn: () => Promise<void>): void }, ownFiles: (root: string) => string[] = () => []) {
  const dir = await mkdtemp(join(tmpdir(), 'escale-local-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  await mkdir(root);
  const logs: LogRecord[] = [];
  const checksums = await ChecksumCache.open(null);
  const access = await AccessStore.open(null);
  const local = new LocalRepository(root, FileFilter.acceptAll(), checksums, access, 'sha512', createLogger([memorySink(logs)]), { ownFiles: ownFiles(root) });
  const scan = async () => {
    const paths: string[] = [];
    for await (const file of local.scan()) paths.push(file.path);
    return paths.sort();
  };
  return { dir, root, logs, local, scan };
}

test('a symbolic link to a file is scanned, stat-ed and read through, like a link to a folder', async (t) => {
  const { dir, root, local, scan } = await repository(t);
  await writeFile(join(dir, 'outside.txt'), 'outside content');
  await writeFile(join(root, 'real.txt'), 'real');
  await symlink(join(dir, 'outside.txt'), join(root, 'link.txt'));
  await symlink('real.txt', join(root, 'inner-link.txt'));
  assert.deepEqual(await scan(), ['inner-link.txt', 'link.txt', 'real.txt']);
  const stat = await local.stat(relPath('link.txt'));
  assert.equal(stat?.size, 'outside content'.length);
  const small = local.readSmall(relPath('link.txt'), 100);
  assert.equal(small?.data.toString(), 'outside content');
  assert.equal(small?.after?.size, 'outside content'.length, 'the state after reading is the target’s, so the file is not taken as changed');
  assert.equal(small?.after?.mtimeMs, stat?.mtimeMs);
  assert.equal(await local.checksumOfPath(relPath('link.txt')), createHash('sha512').update('outside content').digest('hex'));
});

test('a dangling link is skipped with one warning, again only after it was repaired and broke anew', async (t) => {
  const { root, logs, scan } = await repository(t);
  await symlink('missing.txt', join(root, 'dangling.txt'));
  for (let round = 0; round < 3; round++) assert.deepEqual(await scan(), []);
  const warned = () => logs.filter((r) => r.level === 'warning' && r.message === "skipping 'dangling.txt': it is a symbolic link whose target does not exist").length;
  assert.equal(warned(), 1);
  await writeFile(join(root, 'missing.txt'), 'now there');
  assert.deepEqual(await scan(), ['dangling.txt', 'missing.txt']);
  await rm(join(root, 'missing.txt'));
  await scan();
  assert.equal(warned(), 2);
});

test("escale's own files in the root are never scanned, by path before they exist and by identity after, and never downloaded over", async (t) => {
  const { root, local, scan } = await repository(t, (r) => [join(r, 'cc0123'), join(r, 'data'), join(r, 'escale.log')]);
  await writeFile(join(root, 'user.txt'), 'user');
  await writeFile(join(root, 'cc0123'), 'cache');
  await mkdir(join(root, 'data'));
  await writeFile(join(root, 'data', 'am0123'), 'access');
  await symlink('cc0123', join(root, 'cache-alias'));
  assert.deepEqual(await scan(), ['user.txt']);
  await writeFile(join(root, 'escale.log'), 'log');
  assert.deepEqual(await scan(), ['user.txt']);
  assert.equal(local.isOwnFile(relPath('cc0123')), true);
  assert.equal(local.isOwnFile(relPath('user.txt')), false);
});
