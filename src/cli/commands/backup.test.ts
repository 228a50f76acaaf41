import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatLock } from '../../relay/protocol/lock.js';
import { escaleMain } from '../escale.js';
import { escalectlMain } from '../escalectl.js';
import { progressPrinter, PROGRESS_EVERY_MS } from './maintenance.js';
import { capture, runIn, type RunResult } from './command-test-kit.js';
import { ROOT_MARKER } from '../../daemon/local-root.js';

/** Every file below `dir`: relative path -> bytes (links are not followed). */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, prefix: string): void => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const info = lstatSync(path);
      if (info.isDirectory()) walk(path, `${prefix}${name}/`);
      // why: each client marks its own local root (LocalRootGuard); the marker is not synced.
      else if (info.isFile() && name !== ROOT_MARKER) out.set(prefix + name, readFileSync(path));
    }
  };
  walk(dir, '');
  return out;
}

function assertSameTree(actual: Map<string, Buffer>, expected: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: file names`);
  for (const [path, bytes] of expected) assert.ok(actual.get(path)?.equals(bytes), `${what}: content of ${path}`);
}

describe('escalectl backup and restore', () => {
  let dir: string;
  let config: string;
  const relay = (name: string): string => join(dir, `relay-${name}`);
  const local = (name: string): string => join(dir, name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'escale-backup-'));
    config = join(dir, 'escale.conf');
    const section = (name: string, extra = ''): string =>
      `[${name}]\nclient name = ${name}\nlocal path = ${local(name)}\nprotocol = file\nrelay path = ${relay(name)}\n${extra}`;
    const sections = [section('alice'), section('bob'), section('carol', 'index = 1\n'), section('dave', 'index = 1\n')];
    writeFileSync(config, `cache dir = ${join(dir, 'cache')}\nlog file = ${join(dir, 'escale.log')}\n\n${sections.join('\n')}`);
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      mkdirSync(local(name), { recursive: true });
      mkdirSync(relay(name), { recursive: true });
    }
    for (const name of ['alice', 'carol']) {
      mkdirSync(join(local(name), 'sub', 'deeper'), { recursive: true });
      writeFileSync(join(local(name), 'a.txt'), `hello from ${name}\n`);
      writeFileSync(join(local(name), 'sub', 'big.bin'), randomBytes(300 * 1024));
      writeFileSync(join(local(name), 'sub', 'deeper', 'ünïcødé name.txt'), 'unicode\n');
      writeFileSync(join(local(name), 'empty.txt'), '');
      assert.equal(await escaleMain(['--once', '-c', config, '-s', name], capture()), 0, `${name} pushes`);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[]): Promise<RunResult> => runIn(escalectlMain, ['-c', config, ...args]);

  test('placeholder relay: backup then restore gives the same relay tree, in each compression, and leaves no lock', async () => {
    const source = tree(relay('alice'));
    assert.ok(source.has('.a.txt.placeholder') && source.has('sub/big.bin'), 'alice pushed placeholders and data');
    for (const [name, written, magic] of [
      ['plain.tar', 'plain.tar', 'none'],
      ['zipped.tar.gz', 'zipped.tar.gz', 'gzip'],
      ['squeezed.tar.bz2', 'squeezed.tar.bz2', 'bzip2'],
      ['bare', 'bare.tar.bz2', 'bzip2'],
    ] as const) {
      const backup = await run(['backup', 'alice', join(dir, name), '--json']);
      assert.equal(backup.code, 0, backup.stderr);
      const summary = JSON.parse(backup.stdout) as { files: number; compression: string; relay: string; missing: unknown[] };
      assert.deepEqual({ files: summary.files, compression: summary.compression, relay: summary.relay, missing: summary.missing }, { files: source.size, compression: magic, relay: 'placeholder', missing: [] });
      assertSameTree(tree(relay('alice')), source, `${name}: the source relay is unchanged`);
      // why: GNU tar reads what we wrote (an independent check of the format and compression).
      const members = execFileSync('tar', ['-tf', join(dir, written)], { encoding: 'utf8' }).trim().split('\n');
      assert.equal(members[0], '.escale-backup.json');
      assert.deepEqual(members.slice(1).sort(), [...source.keys()].sort());
      assert.equal(readdirSync(dir).filter((n) => n.endsWith('.tmp')).length, 0, 'no temporary file is left');

      const restore = await run(['restore', 'bob', join(dir, name), '--purge']);
      assert.equal(restore.code, 0, restore.stderr);
      assertSameTree(tree(relay('bob')), source, `${name}: restored relay`);
    }
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', join(dir, 'plain.tar'), '.escale-backup.json'], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.deepEqual({ ...manifest, date: typeof manifest['date'] }, { format: 1, section: 'alice', protocol: 'file', relay: 'placeholder', date: 'string' });
  });

  test('a client syncs from a restored placeholder relay', async () => {
    assert.equal((await run(['restore', 'bob', join(dir, 'plain.tar'), '--purge'])).code, 0);
    assert.equal(await escaleMain(['--once', '-c', config, '-s', 'bob'], capture()), 0);
    const pulled = tree(local('bob'));
    for (const [path, bytes] of tree(local('alice'))) assert.ok(pulled.get(path)?.equals(bytes), `bob has ${path}`);
  });

  test('index relay: backup then restore gives the same relay tree, and a client syncs from it', async () => {
    const source = tree(relay('carol'));
    assert.ok(source.has('.0.index'), 'carol pushed an index page');
    const backup = await run(['backup', 'carol', join(dir, 'index.tar.gz')]);
    assert.equal(backup.code, 0, backup.stderr);
    assertSameTree(tree(relay('carol')), source, 'the source relay is unchanged (no page lock left)');
    const restore = await run(['restore', 'dave', join(dir, 'index.tar.gz'), '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal((JSON.parse(restore.stdout) as { files: number }).files, source.size);
    assertSameTree(tree(relay('dave')), source, 'restored relay');
    assert.equal(await escaleMain(['--once', '-c', config, '-s', 'dave'], capture()), 0);
    const pulled = tree(local('dave'));
    for (const [path, bytes] of tree(local('carol'))) assert.ok(pulled.get(path)?.equals(bytes), `dave has ${path}`);
  });

  test('an archive of one relay flavour is not restored into the other', async () => {
    const before = tree(relay('dave'));
    const result = await run(['restore', 'dave', join(dir, 'plain.tar')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /holds a placeholder relay but \[dave\] uses an index-based relay/);
    assertSameTree(tree(relay('dave')), before, 'nothing written');
  });

  test('hostile and damaged archives (../x, absolute, symlink members, truncated) are refused and nothing is written', async () => {
    const hostile = join(dir, 'hostile');
    mkdirSync(join(hostile, 'inner'), { recursive: true });
    writeFileSync(join(hostile, 'x'), 'escaped\n');
    writeFileSync(join(hostile, 'abs-target'), 'absolute\n');
    symlinkSync('/etc', join(hostile, 'inner', 'link'));
    const cases: Array<[string, string[], string, RegExp]> = [
      ['dotdot.tar', ['-P', '../x'], join(hostile, 'inner'), /refused member "\.\.\/x"/],
      ['absolute.tar', ['-P', join(hostile, 'abs-target')], hostile, /refused member ".*abs-target": .*is absolute/],
      ['symlink.tar.gz', ['-z', 'link'], join(hostile, 'inner'), /member "link" is a symbolic link; only regular files and folders are accepted/],
    ];
    writeFileSync(join(relay('bob'), 'keep.txt'), 'keep\n');
    const before = tree(relay('bob'));
    const around = tree(dir);
    for (const [name, args, cwd, message] of cases) {
      // why: GNU tar writes the hostile members (an independent writer, not the code under test).
      execFileSync('tar', ['-cf', join(hostile, name), ...args], { cwd });
      const result = await run(['restore', 'bob', join(hostile, name), '--purge']);
      assert.notEqual(result.code, 0, name);
      assert.match(result.stderr, message, name);
      assertSameTree(tree(relay('bob')), before, `${name}: the relay is untouched (not even purged)`);
    }
    for (const name of ['plain.tar', 'zipped.tar.gz', 'squeezed.tar.bz2']) {
      const whole = readFileSync(join(dir, name));
      writeFileSync(join(hostile, `cut-${name}`), whole.subarray(0, Math.floor(whole.length / 2)));
      const result = await run(['restore', 'bob', join(hostile, `cut-${name}`), '--purge']);
      assert.equal(result.code, 1, name);
      assert.match(result.stderr, /backup archive: .*(truncated|damaged)|bzip2 decompression failed/, name);
      assertSameTree(tree(relay('bob')), before, `cut ${name}: the relay is untouched`);
    }
    const after = tree(dir);
    for (const [path, bytes] of after) {
      if (path.startsWith('hostile/') || path === 'escale.log' || path.startsWith('cache/')) continue;
      assert.ok(around.get(path)?.equals(bytes), `${path} was not written by a restore`);
    }
    assert.equal(readFileSync(join(hostile, 'abs-target'), 'utf8'), 'absolute\n');
  });

  test('a group locked by another client stops a restore unless -f', async () => {
    rmSync(relay('bob'), { recursive: true, force: true });
    mkdirSync(relay('bob'));
    const foreign = formatLock({ owner: 'zed', mode: 'w' });
    writeFileSync(join(relay('bob'), '.a.txt.lock'), foreign);
    const locked = await run(['restore', 'bob', join(dir, 'plain.tar')]);
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /cannot lock resource on destination relay: 'a\.txt' is locked by another client/);
    assert.deepEqual([...tree(relay('bob')).keys()], ['.a.txt.lock'], 'nothing written, no lock of ours left');
    const forced = await run(['restore', 'bob', join(dir, 'plain.tar'), '-f']);
    assert.equal(forced.code, 0, forced.stderr);
    assertSameTree(tree(relay('bob')), new Map([...tree(relay('alice')), ['.a.txt.lock', Buffer.from(foreign)]]), 'restored beside the foreign lock');

    writeFileSync(join(relay('dave'), '.0.lock'), foreign);
    const page = await run(['restore', 'dave', join(dir, 'index.tar.gz')]);
    assert.equal(page.code, 1);
    assert.match(page.stderr, /cannot lock resource on destination relay: '0'/);
    rmSync(join(relay('dave'), '.0.lock'));
  });

  test('a backup lists the files another client keeps locked and still writes the rest', async () => {
    writeFileSync(join(relay('alice'), '.a.txt.lock'), formatLock({ owner: 'zed', mode: 'r' }));
    try {
      const result = await run(['backup', 'alice', join(dir, 'partial.tar'), '--lock-wait', '0', '--json']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /here follows a list of possibly missing files:/);
      const missing = (JSON.parse(result.stdout) as { missing: Array<{ path: string }> }).missing.map((m) => m.path).sort();
      assert.deepEqual(missing, ['.a.txt.lock', '.a.txt.placeholder', 'a.txt']);
      const members = execFileSync('tar', ['-tf', join(dir, 'partial.tar')], { encoding: 'utf8' });
      assert.match(members, /sub\/big\.bin/);
      assert.doesNotMatch(members, /a\.txt/);
      assert.deepEqual([...tree(relay('alice')).keys()].filter((p) => p.endsWith('.lock')), ['.a.txt.lock'], 'only the foreign lock remains');

      // -f copies the relay as it is, the foreign lock included; a locked restore puts that lock back in place of its own.
      const fast = await run(['backup', 'alice', join(dir, 'fast.tar'), '-f']);
      assert.equal(fast.code, 0, fast.stderr);
      rmSync(relay('bob'), { recursive: true, force: true });
      mkdirSync(relay('bob'));
      const restore = await run(['restore', 'bob', join(dir, 'fast.tar')]);
      assert.equal(restore.code, 0, restore.stderr);
      assertSameTree(tree(relay('bob')), tree(relay('alice')), 'restored with the archived lock');
    } finally {
      rmSync(join(relay('alice'), '.a.txt.lock'));
    }
    // A lock left by a killed backup is its own: the next backup takes it over and removes it.
    writeFileSync(join(relay('alice'), '.a.txt.lock'), formatLock({ owner: 'alice-backup', mode: 'r' }));
    const again = await run(['backup', 'alice', join(dir, 'again.tar'), '--lock-wait', '0']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(execFileSync('tar', ['-tf', join(dir, 'again.tar')], { encoding: 'utf8' }), /^a\.txt$/m);
    assert.equal(existsSync(join(relay('alice'), '.a.txt.lock')), false);
  });

  test('progress lines are printed at most every few seconds', () => {
    let now = 0;
    const output = capture();
    const progress = progressPrinter(output, () => now);
    progress(1, 10);
    now += PROGRESS_EVERY_MS;
    progress(2, 10);
    progress(3, 10);
    now += PROGRESS_EVERY_MS;
    progress(9, 10);
    now += PROGRESS_EVERY_MS;
    progress(40);
    assert.equal(output.stderr, 'progress: 2 of 10 files\nprogress: 9 of 10 files\nprogress: 40 files checked\n');
  });

  test('usage errors: unknown compression, unknown section, missing archive', async () => {
    const xz = await run(['backup', 'alice', join(dir, 'a.tar.xz')]);
    assert.equal(xz.code, 2);
    assert.match(xz.stderr, /compression not supported: '\.xz'/);
    const section = await run(['backup', 'zoe', join(dir, 'z.tar')]);
    assert.equal(section.code, 2);
    assert.match(section.stderr, /no section \[zoe\]/);
    const missing = await run(['restore', 'bob', join(dir, 'nothing-here.tar')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot find archive/);
  });
});
