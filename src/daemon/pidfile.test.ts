import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EscaleError } from '../core/errors.js';
import { acquirePidFile, readPidFile } from './pidfile.js';

async function dir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'escale-pid-'));
  t.after(() => rm(path, { recursive: true, force: true }));
  return path;
}

test('readPidFile: absent or not a PID is "nothing running"; a PID file that cannot be read throws its real cause', async (t) => {
  const d = await dir(t);
  assert.equal(await readPidFile(join(d, 'none.pid')), undefined);
  await writeFile(join(d, 'junk.pid'), 'not a pid\n');
  assert.equal(await readPidFile(join(d, 'junk.pid')), undefined);
  await writeFile(join(d, 'ok.pid'), '1234\nworker 5\n');
  assert.equal(await readPidFile(join(d, 'ok.pid')), 1234);
  // why: as root no permission refuses a read; a folder where the file should be fails with EISDIR all the same.
  await mkdir(join(d, 'folder.pid'));
  await assert.rejects(readPidFile(join(d, 'folder.pid')), (error: EscaleError) => error instanceof EscaleError && /cannot read the PID file '.*folder\.pid', so whether escale is already running with this configuration is unknown: EISDIR/.test(error.message));
});

test('acquirePidFile refuses to start when the PID file cannot be read, instead of taking it for stale', async (t) => {
  const d = await dir(t);
  await mkdir(join(d, 'escale.pid'));
  await assert.rejects(acquirePidFile(join(d, 'escale.pid')), /cannot read the PID file/);
  const held = await acquirePidFile(join(d, 'good.pid'));
  assert.equal(await readFile(join(d, 'good.pid'), 'utf8'), `${process.pid}\n`);
  await held.release();
  await writeFile(join(d, 'stale.pid'), '999999999\n');
  const replaced = await acquirePidFile(join(d, 'stale.pid'));
  await replaced.release();
});
