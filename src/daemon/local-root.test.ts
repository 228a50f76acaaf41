import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRootGuard, ROOT_MARKER } from './local-root.js';

interface Setup {
  readonly dir: string;
  readonly root: string;
  readonly recordFile: string;
  guard(writable?: boolean): LocalRootGuard;
}

/** Runs `body` with a root under `mnt/` (not created) and a data folder, then removes them. */
async function withSetup(body: (s: Setup) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'escale-root-'));
  const root = join(dir, 'mnt', 'photos');
  const recordFile = join(dir, 'data', 'lr1234');
  await mkdir(join(dir, 'data'));
  try {
    await body({ dir, root, recordFile, guard: (writable = true) => new LocalRootGuard({ root, recordFile, section: 'photos', writable }) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a fresh client creates its missing root, marks it and records it', () =>
  withSetup(async (s) => {
    assert.deepEqual(await s.guard().check(), { ok: true });
    assert.equal(existsSync(join(s.root, ROOT_MARKER)), true, 'the marker is written');
    assert.equal(existsSync(s.recordFile), true, 'the data folder records the root');
    assert.deepEqual(await s.guard().check(), { ok: true }, 'and it stays fine');
  }));

test('an existing root of an older version (no record, no marker) is marked on the first start', () =>
  withSetup(async (s) => {
    await mkdir(s.root, { recursive: true });
    await writeFile(join(s.root, 'a.txt'), 'a');
    assert.deepEqual(await s.guard().check(), { ok: true });
    assert.deepEqual((await readdir(s.root)).sort(), [ROOT_MARKER, 'a.txt'].sort());
  }));

test('a recorded root that vanished pauses the client and is not created again; it resumes when it is back', () =>
  withSetup(async (s) => {
    assert.equal((await s.guard().check()).ok, true);
    await rename(join(s.dir, 'mnt'), join(s.dir, 'unmounted'));
    const check = await s.guard().check();
    assert.equal(check.ok, false);
    assert.match((check as { reason: string }).reason, /is missing \(an unmounted disk\?\)/);
    assert.equal(existsSync(join(s.dir, 'mnt')), false, 'nothing was created');
    await rename(join(s.dir, 'unmounted'), join(s.dir, 'mnt'));
    assert.deepEqual(await s.guard().check(), { ok: true });
  }));

test('a recorded root that lost its marker (an empty mount point) pauses; recreating the marker resumes', () =>
  withSetup(async (s) => {
    assert.equal((await s.guard().check()).ok, true);
    await unlink(join(s.root, ROOT_MARKER));
    const check = await s.guard().check();
    assert.equal(check.ok, false);
    assert.match((check as { reason: string }).reason, /lost its marker '\.escale\.root'.*touch '.*\.escale\.root'/);
    assert.equal(existsSync(join(s.root, ROOT_MARKER)), false, 'the guard never writes the marker back itself');
    await writeFile(join(s.root, ROOT_MARKER), '');
    assert.deepEqual(await s.guard().check(), { ok: true });
  }));

test('a root that is a file pauses; a record for another root path is a fresh start', () =>
  withSetup(async (s) => {
    assert.equal((await s.guard().check()).ok, true);
    await rm(s.root, { recursive: true });
    await writeFile(s.root, 'not a folder');
    assert.match((await s.guard().check() as { reason: string }).reason, /is not a folder/);
    const moved = new LocalRootGuard({ root: join(s.dir, 'elsewhere'), recordFile: s.recordFile, section: 'photos', writable: true });
    assert.deepEqual(await moved.check(), { ok: true }, 'a new local path in the configuration starts fresh');
    assert.equal(existsSync(join(s.dir, 'elsewhere', ROOT_MARKER)), true);
  }));

test('a dry run writes nothing: a fresh missing root is accepted as it is, a recorded missing root still pauses', () =>
  withSetup(async (s) => {
    assert.deepEqual(await s.guard(false).check(), { ok: true });
    assert.equal(existsSync(s.root), false);
    assert.equal(existsSync(s.recordFile), false);
    assert.equal((await s.guard().check()).ok, true);
    await rm(s.root, { recursive: true });
    assert.equal((await s.guard(false).check()).ok, false);
  }));

test('an unreadable record errs on the side of pausing', () =>
  withSetup(async (s) => {
    await writeFile(s.recordFile, '{not json');
    assert.equal((await s.guard().check()).ok, false, 'a missing root is not created when the record cannot be read');
    assert.equal(existsSync(s.root), false);
  }));
