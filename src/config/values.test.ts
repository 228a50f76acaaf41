import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { asBoolean, closestMatch, editDistance, expandHome, matchesPattern, readInteger, readList, readNumber, readPattern, readSize } from './values.js';

const MIB = 1024 * 1024;

const size = (text: string): number => {
  const r = readSize(text);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.problem}`);
  return r.value;
};

describe('value types (configuration.md C2)', () => {
  it('reads every boolean spelling, case-insensitively', () => {
    for (const t of ['1', 'yes', 'true', 'on', 'YES', 'True', ' On ']) assert.equal(asBoolean(t), true, t);
    for (const t of ['0', 'no', 'false', 'off', 'NO', 'False', 'OFF']) assert.equal(asBoolean(t), false, t);
    for (const t of ['2', 'y', 'n', 'enabled', '']) assert.equal(asBoolean(t), undefined, t);
  });

  it('reads integers and numbers as Python int()/float() would', () => {
    assert.deepEqual(readInteger(' 42 '), { ok: true, value: 42 });
    assert.deepEqual(readInteger('-3'), { ok: true, value: -3 });
    assert.deepEqual(readInteger('1_000'), { ok: true, value: 1000 });
    assert.deepEqual(readInteger('4.5'), { ok: false, problem: "expected a whole number, got '4.5'" });
    assert.deepEqual(readNumber('2.5'), { ok: true, value: 2.5 });
    assert.deepEqual(readNumber('.5'), { ok: true, value: 0.5 });
    assert.deepEqual(readNumber('1e3'), { ok: true, value: 1000 });
    assert.deepEqual(readNumber('ten'), { ok: false, problem: "expected a number, got 'ten'" });
  });

  it('splits lists at commas, trimming and dropping empty items', () => {
    assert.deepEqual(readList('a, ,b,'), ['a', 'b']);
    assert.deepEqual(readList(''), []);
  });

  it('expands ~ and converts backslashes', () => {
    assert.equal(expandHome('~', '/home/u'), '/home/u');
    assert.equal(expandHome('~/x/y', '/home/u/'), '/home/u/x/y');
    assert.equal(expandHome('~bob/x', '/home/u'), '~bob/x');
    assert.equal(expandHome('a\\b', '/home/u'), 'a/b');
  });
});

describe('storage sizes (configuration.md C3)', () => {
  it('reads the original units (MB = MiB, no unit = MB)', () => {
    assert.equal(size('10'), 10 * MIB);
    assert.equal(size('1.5'), 1.5 * MIB);
    assert.equal(size('1,5'), 1.5 * MIB);
    for (const u of ['KB', 'K', 'Ko']) assert.equal(size(`2${u}`), 2048, u);
    for (const u of ['MB', 'M', 'Mo', 'MiB']) assert.equal(size(`3 ${u}`), 3 * MIB, u);
    for (const u of ['GB', 'G', 'Go', 'GiB']) assert.equal(size(`2${u}`), 2 * 1024 * MIB, u);
    for (const u of ['TB', 'T', 'To', 'TiB']) assert.equal(size(`1${u}`), 1024 ** 4, u);
    for (const u of ['PB', 'P', 'Po', 'PiB']) assert.equal(size(`1${u}`), 1024 ** 5, u);
    for (const u of ['EB', 'E', 'Eo', 'EiB']) assert.equal(size(`1${u}`), 1024 ** 6, u);
  });

  it('reads bit units written exactly as in the original', () => {
    assert.equal(size('8Kb'), 1024);
    assert.equal(size('8Mb'), MIB);
    assert.equal(size('1Gb'), 128 * MIB);
    assert.equal(size('1Tb'), 131072 * MIB);
    assert.equal(size('1Pb'), 134217728 * MIB);
    assert.equal(size('1Eb'), 137438953472 * MIB);
  });

  it('also accepts any case, KiB and bytes', () => {
    assert.equal(size('2mb'), 2 * MIB);
    assert.equal(size('2gb'), 2 * 1024 * MIB);
    assert.equal(size('4KiB'), 4096);
    assert.equal(size('4kib'), 4096);
    assert.equal(size('512B'), 512);
    assert.equal(size('512 b'), 512);
    assert.equal(size('1 mib'), MIB);
  });

  it('rejects unknown units, missing numbers and trailing text', () => {
    assert.deepEqual(readSize('3 XB'), { ok: false, problem: "unknown storage unit 'XB' in '3 XB'; use B, KB, MB, GB, TB (or KiB, MiB, GiB, TiB)" });
    assert.deepEqual(readSize('big'), { ok: false, problem: "expected a size such as 500MB or 2 GiB (no unit = MB), got 'big'" });
    assert.equal(readSize('10 GB extra').ok, false);
    assert.equal(readSize('-1GB').ok, false);
  });
});

describe('patterns (configuration.md C4)', () => {
  const p = (source: string) => {
    const r = readPattern(source);
    assert.ok(r.ok);
    return r.value;
  };

  it('wildcards: . is literal, * is anything, matching at the start only', () => {
    const txt = p('*.txt');
    assert.equal(txt.kind, 'wildcard');
    assert.equal(matchesPattern(txt, 'a.txt'), true);
    assert.equal(matchesPattern(txt, 'a.txt.bak'), true, 'prefix match as in the original');
    assert.equal(matchesPattern(txt, 'atxt'), false);
    assert.equal(matchesPattern(p('doc'), 'documents'), true);
    assert.equal(matchesPattern(p('doc'), 'my doc'), false);
  });

  it('wildcards keep other regex characters meaningful', () => {
    assert.equal(matchesPattern(p('a+b'), 'aaab'), true);
    assert.equal(matchesPattern(p('(x|y)z'), 'yz'), true);
  });

  it('regular expressions start with / and may end with /', () => {
    const r = p('/^(build|dist)$/');
    assert.equal(r.kind, 'regex');
    assert.equal(matchesPattern(r, 'build'), true);
    assert.equal(matchesPattern(r, 'builds'), false);
    assert.equal(matchesPattern(p('/a.c'), 'abc'), true);
    assert.equal(matchesPattern(p('/x|y/'), 'y1'), true, 'alternation stays anchored as a whole');
    assert.equal(matchesPattern(p('/(?P<n>a)(?P=n)/'), 'aa'), true, 'Python named groups');
  });

  it('reports a pattern that does not compile', () => {
    const r = readPattern('/[a/');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.problem, /^'\/\[a\/' is not a valid pattern \(/);
  });
});

describe('did you mean', () => {
  it('computes edit distances and close matches', () => {
    assert.equal(editDistance('refrsh', 'refresh'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(closestMatch('refrsh', ['refresh', 'mode']), 'refresh');
    assert.equal(closestMatch('localpath', ['local path', 'path']), 'local path');
    assert.equal(closestMatch('colour', ['refresh', 'mode']), undefined);
  });
});
