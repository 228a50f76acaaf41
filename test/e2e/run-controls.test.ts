// End-to-end: signals, --dry-run and disk quota on real escale processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { allPaths, configText, put, runEscale, sha256File, startEscale, workspace } from './harness.js';

async function twoClients(globals: Record<string, string | number> = {}) {
  const ws = await workspace();
  const relay = join(ws.dir, 'relay');
  for (const d of ['relay', 'alice', 'bob']) await mkdir(join(ws.dir, d));
  const client = (name: string, mode: string) => ({ 'client name': name, 'local path': join(ws.dir, name), protocol: 'file', 'relay path': relay, mode });
  const config = join(ws.dir, 'escale.conf');
  await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'escale.log'), refresh: 2, ...globals }, { alice: client('alice', 'upload'), bob: client('bob', 'download') }));
  return { ...ws, relay, config, alice: join(ws.dir, 'alice'), bob: join(ws.dir, 'bob') };
}

test('SIGTERM in the middle of a push: exit 0, the push is finished or rolled back, no lock left', { timeout: 120_000 }, async () => {
  const s = await twoClients();
  try {
    const chunks = (function* () {
      for (let i = 0; i < 300; i += 1) yield randomBytes(1024 * 1024);
    })();
    await pipeline(Readable.from(chunks), createWriteStream(join(s.alice, 'big.bin')));
    const lock = join(s.relay, '.big.bin.lock');
    const daemon = startEscale(['-c', s.config, '--section', 'alice']);
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      try {
        if (readFileSync(lock, 'utf8').includes('mode: w')) break;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    assert.equal(exit.code, 0, exit.stderr);
    assert.equal(existsSync(lock), false, 'the lock was released');
    const pushed = existsSync(join(s.relay, 'big.bin'));
    assert.equal(existsSync(join(s.relay, '.big.bin.placeholder')), pushed, 'placeholder present exactly when the data is');
    if (pushed) assert.equal(await sha256File(join(s.relay, 'big.bin')), await sha256File(join(s.alice, 'big.bin')));
    assert.deepEqual((await allPaths(s.relay)).filter((p) => p.includes('.escale-')), [], 'no temporary left on the relay');
  } finally {
    await s.cleanup();
  }
});

test('--dry-run prints the plan and changes nothing', async () => {
  const s = await twoClients();
  try {
    await put(s.alice, 'one.txt', '1\n');
    await put(s.alice, 'sub/two.txt', '2\n');
    const before = await allPaths(s.relay);
    const result = await runEscale(['--dry-run', '-c', s.config, '--section', 'alice']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\[alice\] upload 'one\.txt' \(new\)/);
    assert.match(result.stdout, /\[alice\] upload 'sub\/two\.txt' \(new\)/);
    assert.deepEqual(await allPaths(s.relay), before);
    const json = await runEscale(['--dry-run', '--json', '-c', s.config, '--section', 'alice']);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { section: string; kind: string; path: string });
    assert.deepEqual(lines.map((l) => [l.section, l.kind, l.path]), [['alice', 'upload', 'one.txt'], ['alice', 'upload', 'sub/two.txt']]);
  } finally {
    await s.cleanup();
  }
});

test('disk quota: pushing stops with an INFO line when the relay would exceed it, and resumes once space is freed', async () => {
  const s = await twoClients({ 'disk quota': '1MB' });
  try {
    await put(s.alice, 'a.bin', randomBytes(600 * 1024));
    await put(s.alice, 'b.bin', randomBytes(600 * 1024));
    const first = await runEscale(['--once', '-c', s.config, '--section', 'alice']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /quota exceeded \(used: .* of 1\.0 MB\); no more files can be sent/);
    const onRelay = ['a.bin', 'b.bin'].filter((f) => existsSync(join(s.relay, f)));
    assert.equal(onRelay.length, 1);
    assert.equal((await runEscale(['--once', '-c', s.config, '--section', 'bob'])).code, 0);
    assert.equal((await runEscale(['--once', '-c', s.config, '--section', 'alice'])).code, 0);
    assert.equal((await runEscale(['--once', '-c', s.config, '--section', 'bob'])).code, 0);
    for (const f of ['a.bin', 'b.bin']) assert.equal(await sha256File(join(s.bob, f)), await sha256File(join(s.alice, f)), f);
  } finally {
    await s.cleanup();
  }
});
