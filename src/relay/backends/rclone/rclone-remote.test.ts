import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EscaleError } from '../../../core/errors.js';
import { prefersRclone, rcloneRemotes } from './rclone-remote.js';

const rcloneInstalled = spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0;

test('a broken rclone configuration is a Config error with rclone’s own words, never "no remotes" (which routed the name to a native backend)', { skip: !rcloneInstalled && process.env['CI'] !== 'true' ? 'rclone is not installed' : false }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-rclone-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.conf');
  await writeFile(good, '[mybox]\ntype = local\n');
  assert.deepEqual(await rcloneRemotes('rclone', good), ['mybox']);
  const broken = join(dir, 'broken.conf');
  await writeFile(broken, '[mybox\ntype = local\n');
  await assert.rejects(rcloneRemotes('rclone', broken), (error: EscaleError) => error.code === 'Config' && /rclone listremotes' failed: .*could not parse line/.test(error.message) && /rclone remote = no/.test(error.message));
  const target = { protocol: 'sftp', host: 'mybox', directory: 'x', options: { 'rclone config': broken } };
  await assert.rejects(prefersRclone(target), /could not parse line/);
  assert.equal(await prefersRclone({ ...target, options: { 'rclone config': good } }), true);
  // a host-like address never asks rclone, and `rclone remote = no` decides without it
  assert.equal(await prefersRclone({ ...target, host: 'box.example.org' }), false);
  assert.equal(await prefersRclone({ ...target, options: { 'rclone config': broken, 'rclone remote': 'no' } }), false);
});

test('rclone that is not installed knows no remotes: a single word is then a host name', async () => {
  assert.deepEqual(await rcloneRemotes(join(tmpdir(), 'no-such-rclone-binary')), []);
  assert.equal(await prefersRclone({ protocol: 's3', host: 'minio', directory: 'b', options: { 'rclone binary': join(tmpdir(), 'no-such-rclone-binary') } }), false);
});
