import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EscaleError } from '../../core/errors.js';
import { relPath } from '../../core/relpath.js';
import { DEFAULT_PAGE, indexResourceProblem, pageLockName, pageOf, pageSchemeOf, parsePageFileName, persistentIndexName, updateDataName, updateIndexName } from './pages.js';

const FIXTURES = join(process.cwd(), 'test/fixtures/escale-0.7');

describe('pages: page names (relay-format.md P4.1)', () => {
  it('reads the index option', () => {
    assert.deepEqual(pageSchemeOf('1'), { kind: 'single' });
    assert.deepEqual(pageSchemeOf('topdir'), { kind: 'topdir', depth: 1 });
    assert.deepEqual(pageSchemeOf('topdir:2'), { kind: 'topdir', depth: 2 });
    assert.deepEqual(pageSchemeOf('Top Directories: 3'), { kind: 'topdir', depth: 3 });
    assert.throws(() => pageSchemeOf('topdir:0'), (e: unknown) => e instanceof EscaleError && e.code === 'Config');
    assert.throws(() => pageSchemeOf('topdir:x'), (e: unknown) => e instanceof EscaleError && e.code === 'Config');
  });

  it('maps resources as the examples of relay-format.md P4.1 do', () => {
    const one = pageSchemeOf('topdir');
    const two = pageSchemeOf('topdir:2');
    assert.equal(pageOf(relPath('a.txt'), { kind: 'single' }), DEFAULT_PAGE);
    assert.equal(pageOf(relPath('dir/b.bin'), { kind: 'single' }), '0');
    assert.equal(pageOf(relPath('a.txt'), one), '0');
    assert.equal(pageOf(relPath('dir/b.bin'), one), 'dir');
    assert.equal(pageOf(relPath('v1.2/x/y'), one), 'v1_2');
    assert.equal(pageOf(relPath('A/B/c'), two), 'A_B');
    assert.equal(pageOf(relPath('A/c'), two), '0');
    assert.equal(pageOf(relPath('A_B/C/f'), two), pageOf(relPath('A/B_C/f'), two));
    assert.equal(pageOf(relPath('v1.2/f'), one), pageOf(relPath('v1_2/f'), one));
  });

  it('topdir:1 reproduces the pages 0 and dir of the index-topdir fixture', () => {
    const scheme = pageSchemeOf('topdir:1');
    const expected = new Map([
      ['a.txt', '0'],
      ['empty.txt', '0'],
      ['dir/b.bin', 'dir'],
      ['dir/sub/unicode-é.txt', 'dir'],
    ]);
    for (const [path, page] of expected) assert.equal(pageOf(relPath(path), scheme), page, path);
    const relay = readdirSync(join(FIXTURES, 'index-topdir', 'relay-after-push'));
    const pages = new Set(relay.map((n) => parsePageFileName(n)?.page));
    assert.deepEqual([...pages].sort(), ['0', 'dir']);
    for (const page of pages) assert.ok(relay.includes(persistentIndexName(page ?? '')));
  });
});

describe('pages: relay file names (relay-format.md P4.2)', () => {
  it('builds the four names', () => {
    assert.equal(persistentIndexName('0'), '.0.index');
    assert.equal(updateIndexName('0', 1700000200), '.0.1700000200.index');
    assert.equal(updateDataName('dir', 1700000200), '.dir.1700000200.data');
    assert.equal(pageLockName('A_B'), '.A_B.lock');
  });

  it('refuses impossible page names and timestamps', () => {
    for (const bad of ['', 'a.b', 'a/b', 'a\nb']) assert.throws(() => persistentIndexName(bad), (e: unknown) => e instanceof EscaleError && e.code === 'InvalidName');
    assert.throws(() => updateIndexName('0', 1.5));
    assert.throws(() => updateDataName('0', -1));
  });

  it('parses names back, and leaves out everything else', () => {
    assert.deepEqual(parsePageFileName('.0.index'), { page: '0', kind: 'index' });
    assert.deepEqual(parsePageFileName('.dir.lock'), { page: 'dir', kind: 'lock' });
    assert.deepEqual(parsePageFileName('.0.1795643364.index'), { page: '0', kind: 'update-index', timestamp: 1795643364 });
    assert.deepEqual(parsePageFileName('.0.1795643364.data'), { page: '0', kind: 'update-data', timestamp: 1795643364 });
    for (const other of ['a.txt', '..index', '.0.x.index', '.0.12.lock', 'dir/.0.index', '.a.txt.placeholder', '.0.1.2.index', '.0.-5.data', '.index']) {
      assert.equal(parsePageFileName(other), undefined, other);
    }
  });

  it('parses every file of the index fixtures', () => {
    for (const scenario of ['index-plain', 'index-topdir', 'index-pullers2']) {
      for (const phase of ['relay-after-push', 'relay-after-pull']) {
        for (const name of readdirSync(join(FIXTURES, scenario, phase))) {
          const parsed = parsePageFileName(name);
          assert.ok(parsed !== undefined, `${scenario}/${phase}/${name}`);
          const rebuilt = parsed.kind === 'index' ? persistentIndexName(parsed.page)
            : parsed.kind === 'lock' ? pageLockName(parsed.page)
            : parsed.kind === 'update-index' ? updateIndexName(parsed.page, parsed.timestamp ?? 0)
            : updateDataName(parsed.page, parsed.timestamp ?? 0);
          assert.equal(rebuilt, name);
        }
      }
    }
  });
});

describe('pages: names an index relay cannot carry', () => {
  it('a name ending with whitespace is refused; a topdir page whose file names would pass 255 bytes is refused; 237-byte pages still fit', () => {
    const single = pageSchemeOf('1');
    const topdir = pageSchemeOf('topdir');
    assert.match(indexResourceProblem(relPath('a/b.txt '), single) ?? '', /ends with whitespace/);
    assert.equal(indexResourceProblem(relPath(' a/ b.txt'), single), undefined);
    assert.equal(indexResourceProblem(relPath(`${'d'.repeat(250)}/f.txt`), single), undefined, 'one page 0: folder names do not matter');
    assert.equal(indexResourceProblem(relPath(`${'d'.repeat(237)}/f.txt`), topdir), undefined);
    assert.equal(Buffer.byteLength(updateIndexName('d'.repeat(237), 9_999_999_999)), 255);
    assert.match(indexResourceProblem(relPath(`${'d'.repeat(238)}/f.txt`), topdir) ?? '', /would pass the limit of 255 bytes/);
  });
});
