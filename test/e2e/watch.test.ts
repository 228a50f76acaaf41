// Issue 14 end to end: real escale daemons that follow their folders through file-system events,
// poll the relay's change marker, and still see what events and the marker cannot tell them (a
// writer at work, a lost event queue, the limit of watched folders, an escale 0.7 pusher).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHANGE_MARKER } from '../../src/relay/protocol/change-marker.js';
import { writePlaceholderPush07 } from './escale07-writer.js';
import { configText, startEscale, waitFor, workspace, type RunAs } from './harness.js';

type Daemon = ReturnType<typeof startEscale>;

/** A file relay and one configuration (and log) per client, as on separate machines. */
async function setUp(dir: string, names: readonly string[], keys: Record<string, string | number> = {}): Promise<{ relay: string; config(name: string): string; log(name: string): string }> {
  const relay = join(dir, 'relay');
  await mkdir(relay);
  for (const name of names) {
    await mkdir(join(dir, name));
    const section = { 'client name': name, 'local path': join(dir, name), protocol: 'file', 'relay path': relay, ...keys };
    await writeFile(join(dir, `${name}.conf`), configText({ 'cache dir': join(dir, `cache-${name}`), 'log file': join(dir, `${name}.log`) }, { [name]: section }));
  }
  return { relay, config: (name) => join(dir, `${name}.conf`), log: (name) => join(dir, `${name}.log`) };
}

async function stopAll(daemons: readonly (Daemon | undefined)[]): Promise<void> {
  for (const daemon of daemons) daemon?.child.kill('SIGTERM');
  await Promise.all(daemons.map((daemon) => daemon?.exited));
}

const logText = async (path: string): Promise<string> => readFile(path, 'utf8').catch(() => '');
const uploadsOf = (log: string, path: string): number => log.split('\n').filter((line) => line.includes(`uploading file '${path}'`)).length;

test('a burst of 1,000 writes is pushed once each after settling, and arrives at the other daemon', { timeout: 300_000 }, async () => {
  const ws = await workspace();
  let alice: Daemon | undefined;
  let bob: Daemon | undefined;
  try {
    // why: a long refresh, so that only events and the change marker can bring the files over in time.
    const env = await setUp(ws.dir, ['alice', 'bob'], { refresh: 600 });
    alice = startEscale(['-c', env.config('alice')]);
    bob = startEscale(['-c', env.config('bob')]);
    assert.equal(await waitFor(async () => /repository is up to date/.test(await logText(env.log('alice'))) && /repository is up to date/.test(await logText(env.log('bob'))), 60_000), true, 'both daemons started');
    const names = Array.from({ length: 1000 }, (_, i) => `burst/d${i % 10}/f${String(i).padStart(4, '0')}.txt`);
    for (let d = 0; d < 10; d++) await mkdir(join(ws.dir, 'alice', 'burst', `d${d}`), { recursive: true });
    for (const [i, name] of names.entries()) await writeFile(join(ws.dir, 'alice', name), `file ${i}\n`);
    const arrived = async (): Promise<boolean> => {
      for (const name of names) if (!existsSync(join(ws.dir, 'bob', name))) return false;
      return true;
    };
    assert.equal(await waitFor(arrived, 240_000, 500), true, `every file arrived with refresh = 600 s:\n${(await logText(env.log('bob'))).slice(-3000)}`);
    const log = await logText(env.log('alice'));
    const counts = names.map((name) => uploadsOf(log, name));
    assert.deepEqual(counts.filter((n) => n !== 1), [], 'each file was pushed exactly once');
    for (const [i, name] of names.entries()) assert.equal(await readFile(join(ws.dir, 'bob', name), 'utf8'), `file ${i}\n`);
  } finally {
    await stopAll([alice, bob]);
    await ws.cleanup();
  }
});

test('a file appended to for 5 s is not pushed half-written: it goes once, whole, after the writer stops', { timeout: 180_000 }, async () => {
  const ws = await workspace();
  let alice: Daemon | undefined;
  try {
    const env = await setUp(ws.dir, ['alice'], { refresh: 2 });
    alice = startEscale(['-c', env.config('alice')]);
    assert.equal(await waitFor(async () => /repository is up to date/.test(await logText(env.log('alice'))), 60_000), true, 'alice started');
    const growing = join(ws.dir, 'alice', 'grow.log');
    const placeholder = join(env.relay, '.grow.log.placeholder');
    let expected = '';
    const started = Date.now();
    for (let i = 0; Date.now() - started < 5000; i += 1) {
      const line = `line ${i} ${'x'.repeat(100)}\n`;
      await appendFile(growing, line);
      expected += line;
      assert.equal(existsSync(placeholder), false, `nothing is pushed while the file grows (after ${Date.now() - started} ms)`);
      await sleep(100);
    }
    assert.equal(await waitFor(async () => existsSync(join(env.relay, 'grow.log')), 30_000), true, 'pushed once the writer stopped');
    await sleep(3000);
    assert.equal(await readFile(join(env.relay, 'grow.log'), 'utf8'), expected, 'the whole file');
    assert.equal(uploadsOf(await logText(env.log('alice')), 'grow.log'), 1, 'pushed once');
  } finally {
    await stopAll([alice]);
    await ws.cleanup();
  }
});

test('a relay written by an escale 0.7 pusher, which never touches the change marker, is still synced within refresh', { timeout: 180_000 }, async () => {
  const ws = await workspace();
  let alice: Daemon | undefined;
  let bob: Daemon | undefined;
  try {
    const env = await setUp(ws.dir, ['alice', 'bob'], { refresh: 4 });
    // why: alice only pushes, so that bob is the one puller of the 0.7 push (puller count 1: the first puller takes it).
    await appendFile(env.config('alice'), 'mode = upload\n');
    alice = startEscale(['-c', env.config('alice')]);
    bob = startEscale(['-c', env.config('bob')]);
    await writeFile(join(ws.dir, 'alice', 'first.txt'), 'from escale\n');
    assert.equal(await waitFor(async () => existsSync(join(ws.dir, 'bob', 'first.txt')), 60_000), true, 'an escale push goes through the marker');
    const marker = await stat(join(env.relay, CHANGE_MARKER));
    await sleep(1000);
    const pushedAt = Date.now();
    await writePlaceholderPush07(env.relay, 'oldclient', [{ name: Buffer.from('from-07.txt'), content: Buffer.from('from escale 0.7\n'), mtimeSec: 1_700_000_000 }]);
    assert.equal(await waitFor(async () => existsSync(join(ws.dir, 'bob', 'from-07.txt')), 30_000, 100), true, `synced:\n${(await logText(env.log('bob'))).slice(-4000)}`);
    const waited = (Date.now() - pushedAt) / 1000;
    assert.ok(waited <= 4 * 2 + 5, `within the adaptive refresh (at most 4 s) plus a round: ${waited} s`);
    assert.equal(await readFile(join(ws.dir, 'bob', 'from-07.txt'), 'utf8'), 'from escale 0.7\n');
    assert.equal((await stat(join(env.relay, CHANGE_MARKER))).mtimeMs >= marker.mtimeMs, true);
  } finally {
    await stopAll([alice, bob]);
    await ws.cleanup();
  }
});

/** Runs as root of a new user namespace whose limit of inotify watches is `limit` (Linux ≥ 4.9), or undefined when that is not possible here. */
function withWatchLimit(limit: number): RunAs | undefined {
  const probe = spawnSync('unshare', ['-Ur', 'sh', '-c', `echo ${limit} > /proc/sys/user/max_inotify_watches`], { encoding: 'utf8' });
  if (probe.status !== 0) return undefined;
  return { prefix: ['unshare', '-Ur', 'sh', '-c', `echo ${limit} > /proc/sys/user/max_inotify_watches && exec "$@"`, 'sh'] };
}

test('the limit of watched folders (a real ENOSPC) falls back to full scans, says so once, and loses nothing', { timeout: 180_000 }, async (t) => {
  const as = withWatchLimit(3);
  if (as === undefined) {
    if (process.env['CI'] === 'true') assert.fail('unshare -Ur cannot set a per-namespace inotify limit on this machine');
    t.skip('unshare -Ur cannot set a per-namespace inotify limit here');
    return;
  }
  const ws = await workspace();
  let alice: Daemon | undefined;
  try {
    const env = await setUp(ws.dir, ['alice'], { refresh: 2 });
    for (let i = 0; i < 6; i++) await mkdir(join(ws.dir, 'alice', `folder${i}`));
    await writeFile(join(ws.dir, 'alice', 'folder5', 'before.txt'), 'before\n');
    alice = startEscale(['-c', env.config('alice')], undefined, as);
    assert.equal(await waitFor(async () => existsSync(join(env.relay, 'folder5', 'before.txt')), 60_000), true, `synced:\n${alice.output()}`);
    await writeFile(join(ws.dir, 'alice', 'folder4', 'after.txt'), 'after\n');
    assert.equal(await waitFor(async () => existsSync(join(env.relay, 'folder4', 'after.txt')), 30_000), true, 'a later change is found by the full scan of a later round');
    const log = await logText(env.log('alice'));
    const lines = log.split('\n').filter((line) => line.includes('system limit of watched folders'));
    assert.equal(lines.length, 1, `one warning:\n${log}`);
    assert.match(lines[0] as string, /WARNING .*ENOSPC.*fs\.inotify\.max_user_watches.*watch = no/);
  } finally {
    await stopAll([alice]);
    await ws.cleanup();
  }
});
