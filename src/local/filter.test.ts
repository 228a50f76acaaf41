import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileFilter, type Pattern, type FilterOptions } from './filter.js';
import { relPath } from '../core/relpath.js';

/** Compiles a pattern as configuration.md C4 describes (the config helper's job; restated for the tests). */
function pattern(source: string): Pattern {
  if (source.startsWith('/')) {
    const body = source.slice(1).replace(/\/$/, '');
    return { source, regex: new RegExp(body) };
  }
  return { source, regex: new RegExp(source.replace(/\./g, '\\.').replace(/\*/g, '.*')) };
}

function filter(options: Partial<Record<keyof FilterOptions, string[]>>): FileFilter {
  return new FileFilter({
    extensions: options.extensions ?? [],
    include: (options.include ?? []).map(pattern),
    exclude: (options.exclude ?? []).map(pattern),
    includeDirs: (options.includeDirs ?? []).map(pattern),
    excludeDirs: (options.excludeDirs ?? []).map(pattern),
  });
}

const accepts = (f: FileFilter, path: string): boolean => f.acceptsFile(relPath(path));

test('no option keeps everything', () => {
  const f = FileFilter.acceptAll();
  for (const p of ['a', 'a.txt', 'x/y/z.bin']) assert.equal(accepts(f, p), true);
});

test('extensions: last extension only, with or without dot, case-sensitive', () => {
  const f = filter({ extensions: ['.txt', 'md'] });
  assert.equal(accepts(f, 'a.txt'), true);
  assert.equal(accepts(f, 'd/b.md'), true);
  assert.equal(accepts(f, 'a.TXT'), false);
  assert.equal(accepts(f, 'a.txt.bak'), false);
  assert.equal(accepts(f, 'README'), false);
  assert.equal(filter({ extensions: ['gz'] }).acceptsBaseName('a.tar.gz'), true);
  assert.equal(filter({ extensions: ['tar.gz'] }).acceptsBaseName('a.tar.gz'), false, '.tar.gz cannot be expressed');
  assert.equal(filter({ extensions: ['bashrc'] }).acceptsBaseName('.bashrc'), false, 'a leading dot is not an extension');
});

test('wildcard include matches at the start only, not the whole name', () => {
  const f = filter({ include: ['*.txt'] });
  assert.equal(accepts(f, 'a.txt'), true);
  assert.equal(accepts(f, 'a.txt.bak'), true, 'prefix match: *.txt keeps a.txt.bak');
  assert.equal(accepts(f, 'atxt'), false, 'the dot is literal');
  assert.equal(accepts(f, 'a.md'), false);
  const doc = filter({ include: ['doc'] });
  assert.equal(accepts(doc, 'documents'), true);
  assert.equal(accepts(doc, 'mydoc'), false, 'anchored at the start');
});

test('include is "any", exclude is "any", exclude wins', () => {
  const f = filter({ include: ['*.txt', '*.md'], exclude: ['secret*', '/.*~$/'] });
  assert.equal(accepts(f, 'a.md'), true);
  assert.equal(accepts(f, 'secret.txt'), false);
  assert.equal(accepts(f, 'notes.txt~'), false);
  assert.equal(accepts(f, 'a.bin'), false);
});

test('/regex/ patterns: leading slash and one trailing slash removed, anchored at start', () => {
  const f = filter({ include: ['/[0-9]+\\.log/'] });
  assert.equal(accepts(f, '2024.log'), true);
  assert.equal(accepts(f, 'x2024.log'), false);
  const g = filter({ exclude: ['/tmp'] });
  assert.equal(accepts(g, 'tmpfile'), false);
  assert.equal(accepts(g, 'a-tmp'), true);
});

test('a regex flag such as g does not make matching stateful', () => {
  const f = new FileFilter({ extensions: [], include: [{ source: '/a/', regex: /a/g }], exclude: [], includeDirs: [], excludeDirs: [] });
  for (let i = 0; i < 3; i++) assert.equal(f.acceptsBaseName('abc'), true);
});

test('include directories = docs keeps docs and docs/x (prefix semantics)', () => {
  const f = filter({ includeDirs: ['docs'] });
  assert.equal(f.entersDir(relPath('docs')), true);
  assert.equal(f.entersDir(relPath('docs/x')), true);
  assert.equal(f.entersDir(relPath('docs-old')), true, 'prefix match');
  assert.equal(f.entersDir(relPath('src')), false);
  assert.equal(accepts(f, 'docs/a.txt'), true);
  assert.equal(accepts(f, 'docs/x/a.txt'), true);
  assert.equal(accepts(f, 'src/a.txt'), false);
});

test('include directories on a nested path does not reach it (crawl semantics on both sides)', () => {
  const f = filter({ includeDirs: ['docs/x'] });
  assert.equal(f.entersDir(relPath('docs/x')), true);
  assert.equal(f.reachesDir(relPath('docs/x')), false, 'docs itself is not entered');
  assert.equal(accepts(f, 'docs/x/a.txt'), false);
});

test('exclude directories drops the folder and everything below', () => {
  const f = filter({ excludeDirs: ['build', '/cache$/'] });
  assert.equal(accepts(f, 'build/a.o'), false);
  assert.equal(accepts(f, 'build/sub/a.o'), false);
  assert.equal(accepts(f, 'builds/a.o'), false, 'prefix match');
  assert.equal(accepts(f, 'cache/a'), false);
  assert.equal(accepts(f, 'cache/deep/a'), false, 'an excluded ancestor hides its subfolders even if they do not match');
  assert.equal(accepts(f, 'src/build/a.o'), true, 'patterns test the path from the root');
});

test('root-level files are never subject to directory filters (upload and download alike)', () => {
  const include = filter({ includeDirs: ['docs'] });
  assert.equal(accepts(include, 'top.txt'), true);
  const exclude = filter({ excludeDirs: ['/.*/'] });
  assert.equal(accepts(exclude, 'top.txt'), true);
  assert.equal(accepts(exclude, 'any/file'), false);
  assert.equal(include.entersDir(relPath('')), true);
});

test('file filters apply to the base name, not the folder', () => {
  const f = filter({ include: ['a*'] });
  assert.equal(accepts(f, 'b/a.txt'), true);
  assert.equal(accepts(f, 'a/b.txt'), false);
});

test('the directory verdict cache is per folder', () => {
  const f = filter({ excludeDirs: ['x'] });
  assert.equal(accepts(f, 'x/1'), false);
  assert.equal(accepts(f, 'x/2'), false);
  assert.equal(accepts(f, 'y/1'), true);
  assert.equal(accepts(f, 'x/3'), false);
});
