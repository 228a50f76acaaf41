// Disk full on the local side: bob's local folder is a 20 MiB tmpfs and alice sends a 30 MiB version
// of a file bob already has. Bob's copy stays byte-identical, the relay keeps the new version, the
// failure is reported, and once the space is there the next round completes. Needs mount (root);
// skipped loudly otherwise, and a failure under CI=true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configText, put, runEscale, sha256File, workspace } from '../e2e/harness.js';
import { loudSkip } from '../e2e/encryption-support.js';
import { ROOT_MARKER } from '../../src/daemon/local-root.js';

const MIB = 1024 * 1024;

function mount(args: string[]): { ok: boolean; error: string } {
  const result = spawnSync('mount', args, { encoding: 'utf8' });
  return { ok: result.status === 0, error: `${result.stderr ?? ''}${result.error?.message ?? ''}`.trim() };
}

test('disk full during a download: local file untouched, relay copy kept, reported, completed once space returns', { timeout: 120_000 }, async (t) => {
  const ws = await workspace('escale-diskfull-');
  const relay = join(ws.dir, 'relay');
  const alice = join(ws.dir, 'alice');
  const bob = join(ws.dir, 'bob');
  let mounted = false;
  try {
    for (const d of [relay, alice, bob]) await mkdir(d);
    const attempt = mount(['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', bob]);
    if (!attempt.ok) {
      const why = `cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): ${attempt.error}`;
      assert.notEqual(process.env['CI'], 'true', `disk-full test cannot run under CI: ${why}`);
      loudSkip('disk-full test', why);
      t.skip(why);
      return;
    }
    mounted = true;
    const log = join(ws.dir, 'escale.log');
    const config = join(ws.dir, 'escale.conf');
    const section = (name: string, mode: string): Record<string, string> => ({ 'client name': name, 'local path': join(ws.dir, name), protocol: 'file', 'relay path': relay, mode });
    await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': log, checksum: 'yes' }, { alice: section('alice', 'upload'), bob: section('bob', 'download') }));
    const once = (name: string): ReturnType<typeof runEscale> => runEscale(['--once', '-c', config, '--section', name]);

    await put(alice, 'big.bin', randomBytes(1 * MIB), 1_700_000_000);
    assert.equal((await once('alice')).code, 0);
    assert.equal((await once('bob')).code, 0);
    const before = await readFile(join(bob, 'big.bin'));

    await put(alice, 'big.bin', randomBytes(30 * MIB), 1_700_000_100);
    const wanted = await sha256File(join(alice, 'big.bin'));
    assert.equal((await once('alice')).code, 0);
    const full = await once('bob');
    assert.equal(full.code, 1, `a download that hit a full disk must fail the --once round:\n${full.stderr}`);
    assert.match(full.stderr, /DiskFull|no space left/i, 'the client reports the full disk');
    assert.match(await readFile(log, 'utf8'), /DiskFull|no space left/i, 'the log file records it');
    assert.ok((await readFile(join(bob, 'big.bin'))).equals(before), "bob's existing file is byte-identical");
    assert.deepEqual((await readdir(bob)).filter((n) => n !== 'big.bin' && n !== ROOT_MARKER), [], 'no temporary file is left in the full folder');
    assert.equal(existsSync(join(relay, 'big.bin')), true, 'the relay keeps the new version');
    assert.equal(await sha256File(join(relay, 'big.bin')), wanted);
    assert.deepEqual((await readdir(relay)).filter((n) => n.endsWith('.lock')), [], 'no lock is left');

    const grown = mount(['-o', 'remount,size=64m', bob]);
    assert.ok(grown.ok, grown.error);
    const resumed = await once('bob');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(await sha256File(join(bob, 'big.bin')), wanted, 'the next round completes once space returns');
  } finally {
    if (mounted) spawnSync('umount', [bob]);
    await ws.cleanup();
  }
});
