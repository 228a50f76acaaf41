import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EscaleError } from '../core/errors.js';
import { findConfigFile, loadConfig, nodeFileProbe } from './load.js';

// why: these tests run as root, whom no permission stops; a symbolic-link loop (ELOOP) fails a stat
// all the same, which is the class at stake: a path that cannot be looked at is not a missing one.
test('a configuration file that cannot be looked at is reported with its cause, not as missing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-load-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await symlink('loop', join(dir, 'loop'));
  const looped = join(dir, 'loop', 'escale.conf');
  assert.equal(nodeFileProbe.kind(looped), 'inaccessible');
  assert.match(nodeFileProbe.problem?.(looped) ?? '', /ELOOP/);
  assert.equal(nodeFileProbe.kind(join(dir, 'nothing.conf')), 'missing');
  assert.throws(() => findConfigFile(looped), (error: EscaleError) => error.code === 'Config' && /cannot access '.*escale\.conf': ELOOP/.test(error.message));
  assert.throws(() => findConfigFile(join(dir, 'nothing.conf')), /file not found/);
  // a default location that cannot be looked at is not skipped for the next one
  const home = join(dir, 'home');
  await symlink(join(dir, 'loop'), home);
  assert.throws(() => findConfigFile(undefined, { home }), /cannot access '.*\.config\/escale\/escale\.conf': ELOOP/);
  // an unreadable key file named in a configuration: the cause, with file and line
  const config = join(dir, 'escale.conf');
  await writeFile(config, `[a]\nlocal path = ${dir}/a\nprotocol = file\nrelay path = ${dir}/relay\nencryption = fernet\npassphrase = ${looped}\n`);
  await assert.rejects(loadConfig(config), (error: EscaleError) => /escale\.conf:6: \[a\] passphrase: cannot access '.*': ELOOP/.test(error.message));
});
