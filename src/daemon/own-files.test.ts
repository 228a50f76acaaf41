import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../config/load.js';
import { ownFilesInside } from '../local/own-files.js';
import { ownFilesOf, sectionStores } from './client.js';

test("ownFilesOf lists every section's stores, the log with its rotated copies and the PID file; ownFilesInside finds those in a root, through links", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-own-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'alice.conf');
  const text = `log file = ${dir}/alice/logs/escale.log\nlog rotate = 2\n\n[alice]\nlocal path = ${dir}/alice\nprotocol = file\nrelay path = ${dir}/relay\n\n[work]\nlocal path = ${dir}/work\nprotocol = file\nrelay path = ${dir}/relay2\nindex = 1\nchecksum cache = ${dir}/alice/work.cache\n`;
  const config = loadConfigText(text, file, { home: dir, cwd: dir });
  const own = ownFilesOf(config);
  const paths = own.map((f) => f.path);
  for (const expected of [join(dir, 'alice'), join(dir, 'alice', 'logs', 'escale.log'), join(dir, 'alice', 'logs', 'escale.log.1'), join(dir, 'alice', 'logs', 'escale.log.2'), join(dir, 'alice.pid'), join(dir, 'alice.sock'), join(dir, 'alice', 'work.cache')]) {
    assert.ok(paths.includes(expected), expected);
  }
  const alice = config.clients.find((c) => c.section === 'alice');
  assert.ok(alice);
  const stores = sectionStores(alice);
  assert.deepEqual(stores.map((s) => s.what).filter((w) => !w.includes('set aside')), ['data folder', 'access store', 'update failure log', 're-send log', 'local root record', 'base state', 'placeholder cache', 'checksum cache']);
  assert.equal(stores.find((s) => s.what === 'update failure log')?.optional, true, 'a placeholder section writes no update failure log');
  // inside alice/: the other section's cache, alice's own stores (not the data folder, which is the root itself), the logs
  const inside = ownFilesInside(join(dir, 'alice'), own).map((f) => f.what);
  assert.ok(inside.includes('checksum cache'));
  assert.ok(inside.includes('log file'));
  assert.ok(!inside.includes('PID file'));
  assert.ok(!ownFilesInside(join(dir, 'alice'), own).some((f) => f.path === join(dir, 'alice')));
  // through a symbolic link: a root reached by a link still holds them
  await mkdir(join(dir, 'alice'));
  await symlink(join(dir, 'alice'), join(dir, 'link-to-alice'));
  assert.deepEqual(ownFilesInside(join(dir, 'link-to-alice'), own).map((f) => f.path).sort(), ownFilesInside(join(dir, 'alice'), own).map((f) => f.path).sort());
  assert.deepEqual(ownFilesInside(join(dir, 'work'), own).map((f) => f.what), []);
});
