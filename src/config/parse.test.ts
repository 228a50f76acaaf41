import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { interpolate, parseConfigText } from './parse.js';

const entries = (text: string, section?: string): Record<string, string> => {
  const parsed = parseConfigText(text);
  const s = section === undefined ? parsed.globals : parsed.sections.find((x) => x.name === section);
  assert.ok(s, `section ${section}`);
  return Object.fromEntries([...s.entries.values()].map((e) => [e.key, e.value]));
};

describe('parseConfigText (configuration.md C1)', () => {
  it('puts keys before the first section into the globals and keeps line numbers', () => {
    const parsed = parseConfigText('# c\n\nrefresh = 10\n[alice]\nlocal path = /a\n');
    assert.deepEqual(entries('refresh = 10\n[alice]\nlocal path = /a\n'), { refresh: '10' });
    assert.equal(parsed.globals.entries.get('refresh')?.line, 3);
    assert.equal(parsed.sections[0]?.name, 'alice');
    assert.equal(parsed.sections[0]?.line, 4);
    assert.equal(parsed.sections[0]?.entries.get('local path')?.line, 5);
    assert.deepEqual(parsed.problems, []);
  });

  it('treats an explicit [DEFAULT] section as the globals, merged with leading keys', () => {
    const parsed = parseConfigText('a = 1\n[DEFAULT]\nb = 2\n[x]\nc = 3\n[DEFAULT]\nd = 4\n');
    assert.deepEqual([...parsed.globals.entries.keys()], ['a', 'b', 'd']);
    assert.equal(parsed.sections.length, 1);
  });

  it('accepts = and : as delimiters and splits at the first one', () => {
    assert.deepEqual(entries('a = 1\nb: 2\nc = x:y=z\nd: u=v\n'), { a: '1', b: '2', c: 'x:y=z', d: 'u=v' });
  });

  it('lower-cases keys, keeps the written form, trims keys and values', () => {
    const parsed = parseConfigText('  Local Path   =   /x  \n');
    const e = parsed.globals.entries.get('local path');
    assert.equal(e?.written, 'Local Path');
    assert.equal(e?.value, '/x');
  });

  it('keeps section names case-sensitive', () => {
    const parsed = parseConfigText('[Alice]\na=1\n[alice]\na=2\n');
    assert.deepEqual(parsed.sections.map((s) => s.name), ['Alice', 'alice']);
    assert.deepEqual(parsed.problems, []);
  });

  it('skips full-line # and ; comments, also indented, and has no inline comments', () => {
    assert.deepEqual(entries('# one\n; two\n   # three\nrefresh = 10 # sec\nx = a ; b\n'), { refresh: '10 # sec', x: 'a ; b' });
  });

  it('joins continuation lines (indented deeper than the key) with newlines, keeping inner blank lines', () => {
    assert.deepEqual(entries('include = a,\n   b,\n\n   c\n  # note\n   d\nnext = 1\n'), { include: 'a,\nb,\n\nc\nd', next: '1' });
  });

  it('does not take an indented key after a header as a continuation', () => {
    assert.deepEqual(entries('[s]\n  a = 1\n  b = 2\n', 's'), { a: '1', b: '2' });
  });

  it('allows empty values and strips a BOM and CRLF line ends', () => {
    assert.deepEqual(entries('\uFEFFa =\r\nb = 2\r\n'), { a: '', b: '2' });
  });

  it('accepts a comment after a section header', () => {
    const parsed = parseConfigText('[alice] # my laptop\na = 1\n');
    assert.equal(parsed.sections[0]?.name, 'alice');
    assert.deepEqual(parsed.problems, []);
  });

  it('reports duplicate sections, duplicate keys, missing delimiters, empty keys and bad headers', () => {
    const parsed = parseConfigText('[a]\nx = 1\nX = 2\n[a]\ny = 1\njunk\n= v\n[b\n[]\n');
    assert.deepEqual(parsed.problems, [
      { line: 3, message: "duplicate key 'X' in section [a] (first set on line 2)" },
      { line: 4, message: 'duplicate section [a] (first defined on line 1)' },
      { line: 6, message: "expected 'key = value' or '[section]', found 'junk'" },
      { line: 7, message: "missing key before '='" },
      { line: 8, message: "malformed section header '[b'; expected '[name]'" },
      { line: 9, message: 'empty section name' },
    ]);
  });

  it('reports a duplicate key across two [DEFAULT] blocks', () => {
    const parsed = parseConfigText('a = 1\n[DEFAULT]\na = 2\n');
    assert.deepEqual(parsed.problems, [{ line: 3, message: "duplicate key 'a' in the global settings (first set on line 1)" }]);
  });
});

describe('interpolate (configuration.md C1)', () => {
  const vars: Record<string, string> = { base: '/srv', dir: '%(base)s/escale', loop: '%(loop)s' };
  const lookup = (k: string): string | undefined => vars[k];

  it('turns %% into % and expands %(key)s recursively', () => {
    assert.deepEqual(interpolate('p%%ss', lookup), { ok: true, value: 'p%ss' });
    assert.deepEqual(interpolate('%(dir)s/x', lookup), { ok: true, value: '/srv/escale/x' });
    assert.deepEqual(interpolate('%(BASE)s', lookup), { ok: true, value: '/srv' });
  });

  it('rejects a lone %, a bad reference, an unknown key and a loop', () => {
    assert.deepEqual(interpolate('50%', lookup), { ok: false, message: "a literal '%' must be written '%%' (or start a reference '%(key)s')" });
    assert.deepEqual(interpolate('%(base)', lookup), { ok: false, message: "bad reference '%(base)'; write '%(key)s', or '%%' for a literal '%'" });
    assert.deepEqual(interpolate('%(nope)s', lookup), { ok: false, message: "'%(nope)s' refers to key 'nope', which is not set; write '%%' for a literal '%'" });
    assert.deepEqual(interpolate('%(loop)s', lookup), { ok: false, message: "'%(...)s' references nest deeper than 10 levels (circular reference?)" });
  });
});

describe('interpolation bombs', () => {
  it('refuses a value that grows exponentially through repeated references', () => {
    const keys: Record<string, string> = { a: 'x'.repeat(100) };
    for (const [name, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e']] as const) keys[name] = `%(${prev})s`.repeat(20);
    const started = Date.now();
    const result = interpolate('%(f)s', (k) => keys[k]);
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.message, /grows past 65536 characters/);
    assert.ok(Date.now() - started < 2000, 'refused quickly');
  });
});
