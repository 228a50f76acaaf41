// End-to-end: modifiers set with the built `escalectl access` are honoured by a real `escale --once`:
// `r-` is never uploaded, `w-` is never overwritten (sync-rules.md R7, R7.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { put } from './harness.js';
import { allFiles, encryptedSetup } from './encryption-support.js';
import { runEscalectl } from './harness.js';

test('escalectl access r- / w- / --list, honoured by escale --once', async () => {
  const s = await encryptedSetup({ alice: { mode: 'shared' }, bob: { mode: 'shared' } });
  try {
    await put(s.folder('alice'), 'public.txt', 'for everyone\n', 1_700_000_000);
    await put(s.folder('alice'), 'private/secret.txt', 'alice keeps this\n', 1_700_000_000);
    await put(s.folder('alice'), 'mine.txt', 'alice newer version\n', 1_700_000_500);
    await put(s.folder('bob'), 'mine.txt', 'bob keeps his own\n', 1_700_000_000);

    // the global -c works before and after the subcommand; a path from the cwd works as well.
    const hide = await runEscalectl(['-c', s.config, 'access', join(s.folder('alice'), 'private/secret.txt'), 'r-']);
    assert.deepEqual([hide.code, hide.stdout, hide.stderr], [0, '', ''], 'setting prints nothing');
    const protect = await runEscalectl(['access', '-c', s.config, 'mine.txt', 'w-', '-r', 'bob'], { cwd: s.folder('bob') });
    assert.equal(protect.code, 0, protect.stderr);
    assert.equal((await runEscalectl(['-c', s.config, 'access', '-r', 'alice', 'private/secret.txt'])).stdout, 'r-w?\n');
    assert.equal((await runEscalectl(['-c', s.config, 'access', '-r', 'bob', 'mine.txt'])).stdout, 'r?w-\n');
    const listed = await runEscalectl(['-c', s.config, 'access', '--list', '--json']);
    assert.deepEqual(JSON.parse(listed.stdout), [
      { section: 'alice', path: 'private/secret.txt', read: false, write: null, modifiers: 'r-w?' },
      { section: 'bob', path: 'mine.txt', read: null, write: false, modifiers: 'r?w-' },
    ]);

    const bad = await runEscalectl(['-c', s.config, 'access', '-r', 'bob', 'mine.txt', 'w!']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^escalectl: bad access modifier "w!"/m);
    const unknown = await runEscalectl(['-c', s.config, 'access', '-r', 'carol', 'mine.txt']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no section \[carol\]/);

    await s.once('alice');
    const relay = await allFiles(s.relay);
    assert.ok(relay.includes('public.txt') && relay.includes('mine.txt'), relay.join(', '));
    assert.equal(relay.some((p) => p.includes('secret')), false, 'r-: neither data nor placeholder of secret.txt on the relay');

    await s.once('bob');
    assert.equal(await readFile(join(s.folder('bob'), 'public.txt'), 'utf8'), 'for everyone\n');
    assert.equal(await readFile(join(s.folder('bob'), 'mine.txt'), 'utf8'), 'bob keeps his own\n', 'w-: never overwritten');
    await s.once('bob');
    assert.equal(await readFile(join(s.folder('bob'), 'mine.txt'), 'utf8'), 'bob keeps his own\n', 'nor in a later round');

    // lifting r- lets the file go
    assert.equal((await runEscalectl(['-c', s.config, 'access', '-r', 'alice', 'private/secret.txt', 'r?'])).code, 0);
    await s.once('alice');
    assert.ok((await allFiles(s.relay)).includes('private/secret.txt'), 'r?: uploaded again');
  } finally {
    await s.cleanup();
  }
});
