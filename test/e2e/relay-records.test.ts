// End-to-end: real `escale` processes on a `file` relay whose records are damaged or written by
// other clients: junk placeholders beside data, locks that cannot be read, and escale 0.7 pullers
// with `puller count = 2`, which delete the data on their first pull and never record themselves
// (emulated by doing exactly the relay operations 0.7 does, relay-format.md P8.1).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusJson } from '../../src/daemon/status-model.js';
import { fileRelayConfig, put, runEscale, runEscalectl, startEscale, tree, waitFor, workspace } from './harness.js';

interface Setup {
  readonly dir: string;
  readonly relay: string;
  readonly config: string;
  readonly log: string;
  folder(name: string): string;
  /** One `escale --once` round of a section (exit 0 asserted). */
  once(section: string): Promise<string>;
  /** Lines of the shared log file that match `pattern`. */
  logged(pattern: RegExp): Promise<string[]>;
  cleanup(): Promise<void>;
}

async function setup(sections: Record<string, Record<string, string | number>>, globals: Record<string, string | number> = {}): Promise<Setup> {
  const ws = await workspace('escale-e2e-records-');
  // why: `1.0`, one second (a bare `1` reads as 'yes', 30 s, as in 0.7): the running client lists the relay every second.
  const { relay, config, log } = await fileRelayConfig(ws.dir, sections, { refresh: '1.0', ...globals });
  return {
    dir: ws.dir,
    relay,
    config,
    log,
    folder: (name) => join(ws.dir, name),
    async once(section) {
      const result = await runEscale(['--once', '-c', config, '--section', section]);
      assert.equal(result.code, 0, `escale --once [${section}] failed:\n${result.stderr}`);
      return result.stderr;
    },
    async logged(pattern) {
      const text = existsSync(log) ? await readFile(log, 'utf8') : '';
      return text.split('\n').filter((line) => pattern.test(line));
    },
    cleanup: ws.cleanup,
  };
}

describe('relay records that cannot be read', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ alice: { mode: 'shared' }, bob: { mode: 'shared' } }, { 'lock timeout': 600 });
  });
  after(() => s.cleanup());

  test('junk placeholders beside relay data are never downloaded; the pusher sends the file again and then it arrives verified', async () => {
    // seeded members of the class: binary junk, a bad line, an empty file, a bare header, an oversized record
    const junk: Record<string, Buffer> = {
      'binary.txt': Buffer.from([0x00, 0xff, 0x10, 0x80, 0xfe]),
      'bad-line.txt': Buffer.from('placeholder%1.0\npusher: alice\ntimestamp: soon\n---pullers---'),
      'empty.txt': Buffer.alloc(0),
      'header-only.txt': Buffer.from('placeholder%1.0\n---pullers---'),
      'oversized.txt': Buffer.alloc(70 * 1024, 0x61),
    };
    const names = Object.keys(junk);
    for (const [i, name] of names.entries()) await put(s.folder('alice'), name, `alice's ${name}\n`, 1_700_000_000 + i);
    await s.once('alice');
    for (const [name, bytes] of Object.entries(junk)) {
      await writeFile(join(s.relay, `.${name}.placeholder`), bytes);
      // the relay data no longer matches anything a record could vouch for
      await writeFile(join(s.relay, name), `tampered ${name}\n`);
    }
    // and data without any placeholder at all
    await writeFile(join(s.relay, 'orphan.txt'), 'data nobody describes\n');
    for (let round = 0; round < 2; round++) await s.once('bob');
    assert.deepEqual([...(await tree(s.folder('bob'))).keys()], [], 'nothing unverified reached bob');
    for (const name of [...names, 'orphan.txt']) {
      assert.ok((await s.logged(new RegExp(`WARNING escale\\.bob: missing meta information for file '${name.replace('.', '\\.')}'.*left in place`))).length >= 1, name);
      assert.ok(existsSync(join(s.relay, name)), `${name} stays on the relay`);
    }
    // the pusher re-sends what it has (U4), and bob gets alice's bytes, checked against the new record
    await s.once('alice');
    await s.once('bob');
    const bob = await tree(s.folder('bob'));
    const alice = await tree(s.folder('alice'));
    for (const name of names) assert.deepEqual(bob.get(name), alice.get(name), name);
    assert.equal(bob.has('orphan.txt'), false, 'data without a placeholder whose pusher is gone stays on the relay, never downloaded');
  });

  test('a lock that cannot be read waits like one without owner, then expires in a running client after the lock timeout, with one warning each way', async () => {
    await put(s.folder('alice'), 'locked.txt', 'alice locked\n', 1_700_001_000);
    await s.once('alice');
    await writeFile(join(s.relay, '.locked.txt.lock'), Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    const bob = startEscale(['-c', s.config, '--section', 'bob']);
    try {
      assert.ok(await waitFor(async () => (await s.logged(/WARNING escale\.bob: the lock of 'locked\.txt' cannot be read/)).length > 0, 60_000), bob.output());
      // several rounds later (each ends at its own time in the status): still waiting, still one warning
      const roundEnds = new Set<string>();
      const severalRounds = await waitFor(async () => {
        const status = await runEscalectl(['-c', s.config, 'status', '--json']);
        const end = status.code === 0 ? (JSON.parse(status.stdout) as StatusJson).clients.find((c) => c.section === 'bob')?.lastRound?.end : undefined;
        if (end) roundEnds.add(end);
        return roundEnds.size > 3;
      }, 60_000, 300);
      assert.ok(severalRounds, bob.output());
      assert.equal(existsSync(join(s.folder('bob'), 'locked.txt')), false);
      assert.equal((await s.logged(/WARNING escale\.bob: the lock of 'locked\.txt' cannot be read/)).length, 1);
      // the lock grows older than the lock timeout (600 s) while bob runs: bob removes it, data and record with it
      const old = Date.now() / 1000 - 3600;
      await utimes(join(s.relay, '.locked.txt.lock'), old, old);
      // why: backdating a file leaves its folder's stamp as it was, and the file relay lists a folder
      // again only when its stamp moves (every relay writer creates or removes a name in it); a name
      // created and removed here moves it, as a lock of any client would.
      await writeFile(join(s.relay, '.stamp-mover'), '');
      await unlink(join(s.relay, '.stamp-mover'));
      assert.ok(await waitFor(async () => !existsSync(join(s.relay, '.locked.txt.lock')), 60_000), bob.output());
      assert.equal((await s.logged(/WARNING escale\.bob: breaking the unreadable lock of 'locked\.txt'/)).length, 1);
      // alice sends it again; the running bob receives it
      await s.once('alice');
      assert.ok(await waitFor(async () => existsSync(join(s.folder('bob'), 'locked.txt')), 60_000), bob.output());
      assert.equal(await readFile(join(s.folder('bob'), 'locked.txt'), 'utf8'), 'alice locked\n');
    } finally {
      bob.child.kill('SIGTERM');
      assert.equal((await bob.exited).code, 0);
    }
  });
});

/**
 * What escale 0.7 does on the relay when it pulls `name` with `puller count = 2` (relay-format.md
 * P3.5, P8.1): lock `mode: r`, read the placeholder, download the data and delete it (its reader count
 * takes the header lines for readers), write the placeholder back unchanged, unlock.
 */
async function pullLike07(relay: string, name: string, into: string): Promise<void> {
  const lock = join(relay, `.${name}.lock`);
  assert.equal(existsSync(lock), false, 'no lock in the way');
  await writeFile(lock, 'lock%1.0\nowner: carol\nmode: r');
  const placeholder = await readFile(join(relay, `.${name}.placeholder`));
  await copyFile(join(relay, name), join(into, name));
  await unlink(join(relay, name));
  await writeFile(join(relay, `.${name}.placeholder`), placeholder);
  await unlink(lock);
}

describe('mixed pullers: an escale 0.7 puller with puller count 2 next to ours', () => {
  let s: Setup;
  let carol: string;
  before(async () => {
    s = await setup({ alice: { mode: 'shared' }, bob: { mode: 'download' } }, { 'puller count': 2 });
    carol = join(s.dir, 'carol');
    await mkdir(carol);
  });
  after(() => s.cleanup());

  test('our puller finds the data gone without itself among the pullers, asks for a re-send and gets the file', async () => {
    await put(s.folder('alice'), 'report.txt', 'quarterly report\n', 1_700_002_000);
    await s.once('alice');
    await pullLike07(s.relay, 'report.txt', carol);
    await s.once('bob');
    assert.equal(existsSync(join(s.relay, '.report.txt.placeholder')), false, 'the placeholder is gone: the re-send request');
    const warned = await s.logged(/WARNING escale\.bob: file 'report\.txt' left the relay before 2 clients had it .*a puller on the relay does not record itself/);
    assert.equal(warned.length, 1);
    await s.once('alice');
    await s.once('bob');
    assert.equal(await readFile(join(s.folder('bob'), 'report.txt'), 'utf8'), 'quarterly report\n');
    assert.equal((await tree(s.folder('bob'))).get('report.txt')?.mtimeSec, 1_700_002_000);
    assert.match(await readFile(join(s.relay, '.report.txt.placeholder'), 'utf8'), /---pullers---\nbob$/, 'bob recorded itself');
    // bob asks no more: one more round changes nothing
    const before07 = await readFile(join(s.relay, '.report.txt.placeholder'), 'utf8');
    await s.once('bob');
    assert.equal(await readFile(join(s.relay, '.report.txt.placeholder'), 'utf8'), before07);
  });

  test('against a 0.7 puller that takes every copy first, our puller stops asking after 3 requests (counted across restarts) and says so once', async () => {
    await put(s.folder('alice'), 'contested.txt', 'always taken\n', 1_700_003_000);
    for (let ask = 1; ask <= 3; ask++) {
      await s.once('alice');
      assert.ok(existsSync(join(s.relay, 'contested.txt')), `pushed again before request ${ask}`);
      await pullLike07(s.relay, 'contested.txt', carol);
      await s.once('bob');
      assert.equal(existsSync(join(s.relay, '.contested.txt.placeholder')), false, `request ${ask} made`);
    }
    assert.equal((await s.logged(/WARNING escale\.bob: file 'contested\.txt' left the relay before 2 clients/)).length, 1, 'the 0.7 warning once per file and version');
    assert.equal((await s.logged(/WARNING escale\.bob: file 'contested\.txt': asked 3 times for this version/)).length, 1);
    await s.once('alice');
    await pullLike07(s.relay, 'contested.txt', carol);
    await s.once('bob');
    await s.once('bob');
    assert.ok(existsSync(join(s.relay, '.contested.txt.placeholder')), 'no fourth request');
    assert.equal(existsSync(join(s.folder('bob'), 'contested.txt')), false);
    // a new version starts a new count
    await put(s.folder('alice'), 'contested.txt', 'a new version\n', 1_700_003_100);
    await s.once('alice');
    await s.once('bob');
    assert.equal(await readFile(join(s.folder('bob'), 'contested.txt'), 'utf8'), 'a new version\n');
  });
});

describe('mixed pullers on an index relay (relay-format.md P4.10, P8.1)', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ alice: { mode: 'shared', index: 1 }, bob: { mode: 'download', index: 1 } }, { 'puller count': 2, 'allow page deletion': 'no' });
  });
  after(() => s.cleanup());

  test('an update consumed before our puller read it: the file is reported missing, sent again and received; bounded against a puller that always comes first', async () => {
    await put(s.folder('alice'), 'keep.txt', 'stays in the index\n', 1_700_004_000);
    await s.once('alice');
    await s.once('bob');
    assert.equal(await readFile(join(s.folder('bob'), 'keep.txt'), 'utf8'), 'stays in the index\n');
    const consume07 = async () => {
      // 0.7 with puller count 2 counts the phantom empty puller name and deletes the update at once (relay-format.md P8.1)
      const { readdir } = await import('node:fs/promises');
      for (const name of await readdir(s.relay)) if (/^\.0\.\d+\.(index|data)$/.test(name)) await rm(join(s.relay, name));
    };
    // carol (0.7) reads keep.txt's update too, which frees the page for alice's next update
    await consume07();
    await put(s.folder('alice'), 'late.txt', 'read by 0.7 first\n', 1_700_004_100);
    await s.once('alice');
    await consume07();
    await s.once('bob');
    assert.equal((await s.logged(/INFO escale\.bob: file 'late\.txt' reported missing/)).length, 1);
    await s.once('alice');
    await s.once('bob');
    assert.equal(await readFile(join(s.folder('bob'), 'late.txt'), 'utf8'), 'read by 0.7 first\n', 'sent again and received');
    await consume07();
    // a file that the 0.7 puller always takes first: three requests, then no more
    await put(s.folder('alice'), 'contested.txt', 'always taken\n', 1_700_004_200);
    for (let ask = 1; ask <= 3; ask++) {
      await s.once('alice');
      await consume07();
      await s.once('bob');
    }
    assert.equal((await s.logged(/WARNING escale\.bob: file 'contested\.txt' was sent again by 'alice' and left the relay again/)).length, 1);
    assert.equal((await s.logged(/WARNING escale\.bob: file 'contested\.txt': reported missing 3 times/)).length, 1);
    await s.once('alice');
    await consume07();
    await s.once('bob');
    await s.once('bob');
    assert.equal((await s.logged(/INFO escale\.bob: file 'contested\.txt' reported missing/)).length, 3, 'no fourth request');
    assert.equal(existsSync(join(s.folder('bob'), 'contested.txt')), false);
  });
});
