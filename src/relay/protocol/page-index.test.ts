import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EscaleError } from '../../core/errors.js';
import type { RelPath } from '../../core/relpath.js';
import type { MetadataRecord } from './records.js';
import { bzip2CompressBytes, bzip2DecompressBytes } from '../../system/bzip2.js';
import { EMPTY_RECORD, formatPersistentIndex, formatUpdateIndex, indexNameProblem, parsePersistentIndex, parseUpdateIndex, type SkippedIndexEntry } from './page-index.js';

const FIXTURES = join(process.cwd(), 'test/fixtures/escale-0.7');
const SUM_A = 'e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629';
const SUM_B = 'daa295beed4e2ee94c24015b56af626b4f21ef9f44f2b3d40fc41c90900a6bf1b4867c43c57cda54d1b6fd4869b3f23ced5e0ba3c05d0b1680df4ec7d0762403';

/** The 428-byte decompressed persistent index of relay-format.md P4.4, P4.13. */
const PERSISTENT_TEXT =
  '---group---\nplaceholder%1.0\npusher: alice\n-----------\n' +
  `a.txt 175\ntimestamp: 1700000000\nchecksum: ${SUM_A}\n---pullers---\n` +
  `dir/b.bin 175\ntimestamp: 1700000100\nchecksum: ${SUM_B}\n---pullers---\n`;

/** The 434-byte update index of relay-format.md P4.5, P4.13. */
const UPDATE_TEXT =
  `a.txt 205\nplaceholder%1.0\npusher: alice\ntimestamp: 1700000000\nchecksum: ${SUM_A}\n---pullers---\n` +
  `dir/b.bin 205\nplaceholder%1.0\npusher: alice\ntimestamp: 1700000100\nchecksum: ${SUM_B}\n---pullers---\n`;

const record = (pusher: string, timestamp: number, checksum: string, pullers: string[] = []): MetadataRecord => ({ version: '1.0', pusher, timestamp, checksum, pullers });
const EXAMPLE: [RelPath, MetadataRecord][] = [
  ['a.txt' as RelPath, record('alice', 1700000000, SUM_A)],
  ['dir/b.bin' as RelPath, record('alice', 1700000100, SUM_B)],
];

const FIXTURE_TIMES: Record<string, number> = { 'a.txt': 1700000000, 'dir/b.bin': 1700000100, 'dir/sub/unicode-é.txt': 1700000200, 'empty.txt': 1700000300 };

function sourceFiles(scenario: string): Map<string, Buffer> {
  const root = join(FIXTURES, scenario, 'source');
  const out = new Map<string, Buffer>();
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path, `${prefix}${name}/`);
      else out.set((prefix + name).normalize('NFC'), readFileSync(path));
    }
  };
  walk(root, '');
  return out;
}

function relayFiles(scenario: string, phase: string): Map<string, Buffer> {
  const dir = join(FIXTURES, scenario, phase);
  return new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
}

function code(error: unknown): string | undefined {
  return error instanceof EscaleError ? error.code : undefined;
}

describe('page-index: worked example of relay-format.md P4.13', () => {
  it('writes the 428-byte grouped persistent index byte for byte', () => {
    const text = formatPersistentIndex(EXAMPLE);
    assert.equal(text, PERSISTENT_TEXT);
    assert.equal(Buffer.byteLength(text), 428);
  });

  it('compresses it to the 321 bytes Python writes (BZh9, same libbzip2)', async () => {
    const compressed = await bzip2CompressBytes(Buffer.from(PERSISTENT_TEXT));
    assert.equal(compressed.subarray(0, 4).toString('latin1'), 'BZh9');
    assert.equal(compressed.length, 321);
  });

  it('writes the 434-byte update index byte for byte', () => {
    const text = formatUpdateIndex(EXAMPLE);
    assert.equal(text, UPDATE_TEXT);
    assert.equal(Buffer.byteLength(text), 434);
  });

  it('reads both back to the same records', () => {
    const persistent = parsePersistentIndex(PERSISTENT_TEXT);
    assert.deepEqual([...persistent], EXAMPLE);
    const update = parseUpdateIndex(UPDATE_TEXT);
    assert.deepEqual([...update.entries], EXAMPLE);
    assert.deepEqual(update.pullers, []);
  });

  it('writes the consumption block with no trailing LF and reads Python phantom names', () => {
    const text = formatUpdateIndex(EXAMPLE, ['bob']);
    assert.ok(text.endsWith('---pullers---\n---pullers---\nbob'));
    assert.deepEqual(parseUpdateIndex(text).pullers, ['bob', '']);
    const twice = formatUpdateIndex(EXAMPLE, ['bob', '', 'carol']);
    assert.ok(twice.endsWith('---pullers---\nbob\n\ncarol'));
    assert.deepEqual(parseUpdateIndex(twice).pullers, ['bob', '', 'carol', '']);
    assert.equal(formatUpdateIndex([], ['bob']), '---pullers---\nbob');
  });

  it('groups several pushers into several blocks, in order of first appearance', () => {
    const entries: [RelPath, MetadataRecord][] = [
      ['x' as RelPath, record('alice', 1, SUM_A)],
      ['y' as RelPath, record('bob', 2, SUM_B)],
      ['z' as RelPath, record('alice', 3, SUM_A)],
    ];
    const text = formatPersistentIndex(entries);
    assert.equal(text.split('---group---').length, 3);
    assert.ok(text.indexOf('\nx ') < text.indexOf('\nz ') && text.indexOf('\nz ') < text.indexOf('pusher: bob'));
    assert.deepEqual(new Map(parsePersistentIndex(text)), new Map(entries));
  });
});

describe('page-index: escale 0.7 fixtures', () => {
  for (const scenario of ['index-plain', 'index-topdir', 'index-pullers2']) {
    it(`${scenario}: every index file parses to the source files and is rewritten byte for byte`, async () => {
      const source = sourceFiles(scenario);
      const seen = new Map<string, MetadataRecord>();
      for (const phase of ['relay-after-push', 'relay-after-pull']) {
        for (const [name, bytes] of relayFiles(scenario, phase)) {
          if (/^\.[^.]+\.index$/.test(name)) {
            const text = await bzip2DecompressBytes(bytes, { maxOutputBytes: 1 << 20 });
            const entries = parsePersistentIndex(text);
            assert.ok(entries.size > 0, `${phase}/${name} has entries`);
            for (const [path, rec] of entries) seen.set(path, rec);
            assert.equal(formatPersistentIndex(entries), text.toString('utf8'), `${phase}/${name} rewritten exactly`);
          } else if (/^\.[^.]+\.\d+\.index$/.test(name)) {
            const update = parseUpdateIndex(bytes);
            for (const [path, rec] of update.entries) assert.deepEqual(rec, seen.get(path) ?? rec);
            if (update.pullers.length === 0) assert.equal(formatUpdateIndex(update.entries), bytes.toString('utf8'));
          }
        }
      }
      assert.deepEqual([...seen.keys()].sort(), [...source.keys()].sort());
      for (const [path, rec] of seen) {
        assert.equal(rec.pusher, 'alice');
        assert.equal(rec.version, '1.0');
        assert.equal(rec.timestamp, FIXTURE_TIMES[path]);
        assert.equal(rec.checksum, createHash('sha512').update(source.get(path) ?? '').digest('hex'), path);
        assert.deepEqual(rec.pullers, []);
      }
    });
  }

  it('index-pullers2: the rewritten update index of relay-after-pull holds only bob', () => {
    const relay = relayFiles('index-pullers2', 'relay-after-pull');
    const name = [...relay.keys()].find((n) => /^\.0\.\d+\.index$/.test(n));
    assert.ok(name !== undefined);
    const bytes = relay.get(name) ?? Buffer.alloc(0);
    assert.equal(bytes.toString('utf8'), '---pullers---\nbob');
    const update = parseUpdateIndex(bytes);
    assert.equal(update.entries.size, 0);
    assert.deepEqual(update.pullers, ['bob', '']);
    assert.equal(formatUpdateIndex(update.entries, ['bob']), bytes.toString('utf8'));
  });
});

describe('page-index: reader details', () => {
  it('reads an empty text as an empty index and ignores what follows a blank line', () => {
    assert.equal(parsePersistentIndex('').size, 0);
    assert.equal(parsePersistentIndex(new Uint8Array(0)).size, 0);
    assert.equal(parseUpdateIndex(UPDATE_TEXT + '\nnot an entry at all').entries.size, 2);
  });

  it('reads a count of 0 as an empty record', () => {
    const update = parseUpdateIndex('a.txt 0\nb.txt 0\n');
    assert.deepEqual(update.entries.get('a.txt' as RelPath), EMPTY_RECORD);
    assert.equal(update.entries.size, 2);
  });

  it('reads CRLF and CR update indexes (Windows pushers) with universal newlines', () => {
    const crlf = UPDATE_TEXT.replace(/\n/g, '\r\n');
    assert.deepEqual([...parseUpdateIndex(crlf).entries], EXAMPLE);
    assert.deepEqual([...parseUpdateIndex(UPDATE_TEXT.replace(/\n/g, '\r')).entries], EXAMPLE);
  });

  it('counts code points in update indexes and bytes in persistent indexes', () => {
    const name = 'dir/ünï 😀.txt' as RelPath;
    const update = formatUpdateIndex([[name, record('alice', 5, SUM_A)]]);
    assert.deepEqual([...parseUpdateIndex(update).entries.keys()], [name]);
    const persistent = formatPersistentIndex([[name, record('alice', 5, SUM_A)]]);
    assert.deepEqual([...parsePersistentIndex(Buffer.from(persistent)).keys()], [name]);
  });

  it('splits the entry line at its last run of whitespace (names may contain spaces)', () => {
    const rec = `placeholder%1.0\npusher: a\ntimestamp: 7\n---pullers---\n`;
    const text = `my file.txt \t ${rec.length}\n${rec}`;
    assert.deepEqual([...parseUpdateIndex(text).entries.keys()], ['my file.txt']);
  });

  it('keeps the last value of a repeated name, as a Python dict does', () => {
    const text = formatUpdateIndex([EXAMPLE[0]!]) + formatUpdateIndex([['a.txt' as RelPath, record('alice', 9, SUM_B)]]);
    assert.equal(parseUpdateIndex(text).entries.get('a.txt' as RelPath)?.timestamp, 9);
  });
});

describe('page-index: hostile input', () => {
  const body = `placeholder%1.0\npusher: mallory\ntimestamp: 1\n---pullers---\n`;
  const entry = (name: string) => `${name} ${body.length}\n${body}`;

  for (const bad of ['../evil', '/etc/passwd', 'a\\b', 'a/../../b', 'a\u0000b']) {
    it(`refuses entry name ${JSON.stringify(bad)} with InvalidName naming it`, () => {
      assert.throws(() => parseUpdateIndex(entry(bad)), (e: unknown) => code(e) === 'InvalidName' && (e as Error).message.includes(JSON.stringify(bad)));
      assert.throws(() => parsePersistentIndex(entry(bad)), (e: unknown) => code(e) === 'InvalidName');
    });
  }

  it('skips unsafe entries and reports them when onSkip is given', () => {
    const skipped: SkippedIndexEntry[] = [];
    const result = parseUpdateIndex(entry('../evil') + entry('good.txt') + `bad.txt 3\nxyz`, { onSkip: (s) => skipped.push(s) });
    assert.deepEqual([...result.entries.keys()], ['good.txt']);
    assert.deepEqual(skipped.map((s) => [s.name, s.error.code]), [['../evil', 'InvalidName'], ['bad.txt', 'CorruptRecord']]);
  });

  const corrupt: [string, string, RegExp][] = [
    ['a count that runs past the end', `a.txt 500\n${body}`, /runs past the end/],
    ['a negative count', `a.txt -5\n${body}`, /not a non-negative decimal integer/],
    ['a huge count', `a.txt 99999999999999999999\n${body}`, /not a non-negative decimal integer/],
    ['a fractional count', `a.txt 1.5\n${body}`, /not a non-negative decimal integer/],
    ['a line without a count', `justaname\n${body}`, /is not '<name> <count>'/],
    ['an unterminated group', `---group---\nplaceholder%1.0\n`, /not closed/],
  ];
  for (const [what, text, message] of corrupt) {
    it(`refuses ${what} with CorruptRecord`, () => {
      const parse = what.includes('group') ? () => parsePersistentIndex(text) : () => parseUpdateIndex(text);
      assert.throws(parse, (e: unknown) => code(e) === 'CorruptRecord' && message.test((e as Error).message));
    });
  }

  it('refuses a text over the size limit before parsing it', () => {
    assert.throws(() => parsePersistentIndex(PERSISTENT_TEXT, { maxSize: 100 }), (e: unknown) => code(e) === 'CorruptRecord' && /over the limit/.test((e as Error).message));
    assert.throws(() => parseUpdateIndex(Buffer.from(UPDATE_TEXT), { maxSize: 100 }), (e: unknown) => code(e) === 'CorruptRecord');
  });

  it('refuses an update index that is not UTF-8', () => {
    assert.throws(() => parseUpdateIndex(Buffer.from([0x61, 0x20, 0x30, 0x0a, 0xff])), (e: unknown) => code(e) === 'CorruptRecord');
  });

  it('refuses to write names that would not read back', () => {
    assert.throws(() => formatUpdateIndex([['trailing ' as RelPath, EXAMPLE[0]![1]]]), (e: unknown) => code(e) === 'InvalidName');
    assert.throws(() => formatUpdateIndex([['../x' as RelPath, EXAMPLE[0]![1]]]), (e: unknown) => code(e) === 'InvalidName');
    assert.throws(() => formatUpdateIndex(EXAMPLE, ['a\nb']), (e: unknown) => code(e) === 'InvalidName');
  });
});

describe('page-index: names escale does not sync, and spellings', () => {
  const body = `placeholder%1.0\npusher: zoe\ntimestamp: 1\n---pullers---\n`;
  const entry = (name: string): string => `${name} ${[...body].length}\n${body}`;
  const refusedNames = ['a\\b.txt', 'tab\tname.txt', 'ctl\u0007.txt', 'lossy\ufffd.txt', `${'x'.repeat(256)}.txt`, '../evil'];

  it('an entry with a refused name is reported with its problem and kept (in file order) to be written back; the others are read', () => {
    const skipped: SkippedIndexEntry[] = [];
    const text = entry('ok.txt') + refusedNames.map(entry).join('') + entry('Q: answers.txt');
    const parsed = parseUpdateIndex(text, { onSkip: (s) => skipped.push(s) });
    assert.deepEqual([...parsed.entries.keys()], ['ok.txt', 'Q: answers.txt']);
    assert.deepEqual(parsed.kept.map((k) => k.name), refusedNames);
    assert.deepEqual(skipped.map((s) => s.name), refusedNames);
    assert.ok(skipped.every((s) => s.error.code === 'InvalidName' && s.problem !== undefined));
    assert.equal(skipped[0]?.problem, 'contains a backslash');
    const written = formatUpdateIndex(parsed.entries, ['bob'], parsed);
    assert.equal(written, entry('ok.txt') + entry('Q: answers.txt') + refusedNames.map(entry).join('') + '---pullers---\nbob', 'the kept entries are written back byte for byte, after the others');
  });

  it('an NFD name is read under its NFC key and written back in its own spelling', () => {
    const nfd = 'dir/cafe\u0301.txt';
    const parsed = parseUpdateIndex(entry(nfd) + entry('b.txt'));
    assert.deepEqual([...parsed.entries.keys()], [nfd.normalize('NFC'), 'b.txt']);
    assert.deepEqual([...parsed.spellings], [[nfd.normalize('NFC'), nfd]]);
    assert.equal(formatUpdateIndex(parsed.entries, [], parsed), entry(nfd) + entry('b.txt'));
    const persistent = formatPersistentIndex(parsed.entries, parsed);
    assert.ok(persistent.includes(`${nfd} `));
    const back = parsePersistentIndex(persistent);
    assert.deepEqual([...back.keys()], [nfd.normalize('NFC'), 'b.txt']);
  });

  it('one name in two spellings is refused (both kept and reported), in either order', () => {
    for (const names of [['caf\u00e9.txt', 'cafe\u0301.txt'], ['cafe\u0301.txt', 'caf\u00e9.txt']]) {
      const skipped: SkippedIndexEntry[] = [];
      const parsed = parseUpdateIndex(names.map(entry).join('') + entry('ok.txt'), { onSkip: (s) => skipped.push(s) });
      assert.deepEqual([...parsed.entries.keys()], ['ok.txt']);
      assert.deepEqual(parsed.kept.map((k) => k.name).sort(), [...names].sort());
      assert.deepEqual(skipped.map((s) => s.name).sort(), [...names].sort());
      assert.ok(skipped.every((s) => /same Unicode NFC form/.test(s.problem ?? '')));
    }
  });

  it('names that end with whitespace (Python isspace: space, NBSP, ideographic space) cannot be written; leading ones can', () => {
    for (const bad of ['trailing ', 'nbsp\u00a0', 'ideo\u3000']) {
      assert.match(indexNameProblem(bad as RelPath) ?? '', /ends with whitespace/);
      assert.throws(() => formatUpdateIndex([[bad as RelPath, EMPTY_RECORD]]), (e: unknown) => code(e) === 'InvalidName');
    }
    assert.equal(indexNameProblem(' leading and  inner' as RelPath), undefined);
    const parsed = parseUpdateIndex(entry(' leading and  inner'));
    assert.deepEqual([...parsed.entries.keys()], [' leading and  inner']);
  });
});
