import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EscaleError } from '../../core/errors.js';
import {
  appendPuller,
  clientNameProblem,
  distinctPullers,
  formatMetadata,
  parseLegacyTimestamp,
  parseMetadata,
  shouldKeep,
} from './placeholder.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/escale-0.7/', import.meta.url));
const CA = 'e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629';
const CB = 'daa295beed4e2ee94c24015b56af626b4f21ef9f44f2b3d40fc41c90900a6bf1b4867c43c57cda54d1b6fd4869b3f23ced5e0ba3c05d0b1680df4ec7d0762403';
const corrupt = (fragment?: string) => (e: unknown): boolean =>
  e instanceof EscaleError && e.code === 'CorruptRecord' && (fragment === undefined || e.message.includes(fragment));
const sha512 = (data: Buffer | string): string => createHash('sha512').update(data).digest('hex');

test('check values of relay-format.md P6.1 (the worked example checksums)', () => {
  assert.equal(sha512('hello\n'), CA);
  assert.equal(sha512(Buffer.from(Array.from({ length: 16 }, (_, i) => i))), CB);
});

test('formatMetadata reproduces the 204-byte placeholders of relay-format.md P2.2, P3.10', () => {
  const a = formatMetadata({ pusher: 'alice', timestamp: 1700000000, checksum: CA, pullers: [] });
  assert.equal(a, `placeholder%1.0\npusher: alice\ntimestamp: 1700000000\nchecksum: ${CA}\n---pullers---`);
  assert.equal(Buffer.byteLength(a), 204);
  const b = formatMetadata({ pusher: 'alice', timestamp: 1700000100, checksum: CB, pullers: [] });
  assert.equal(Buffer.byteLength(b), 204);
  assert.ok(b.endsWith(`timestamp: 1700000100\nchecksum: ${CB}\n---pullers---`));
});

test('appendPuller turns the 204-byte placeholder into the 208-byte one of relay-format.md P2.2, P3.10', () => {
  const a = formatMetadata({ pusher: 'alice', timestamp: 1700000000, checksum: CA, pullers: [] });
  const after = appendPuller(a, 'bob');
  assert.equal(after, `${a}\nbob`);
  assert.equal(Buffer.byteLength(after), 208);
  assert.deepEqual(parseMetadata(after).pullers, ['bob']);
  assert.equal(formatMetadata(parseMetadata(after)), after);
  assert.equal(appendPuller(after, 'bob'), after, 'an already recorded puller is not appended again');
  assert.equal(appendPuller(after, 'carol'), `${after}\ncarol`);
});

test('appendPuller keeps legacy records legacy and adds the marker where it is missing', () => {
  assert.equal(appendPuller('231114_221320', 'bob'), '231114_221320\nbob');
  assert.equal(appendPuller('placeholder%1.0\ntimestamp: 5', 'bob'), 'placeholder%1.0\ntimestamp: 5\n---pullers---\nbob');
  assert.deepEqual(parseMetadata(appendPuller('placeholder%1.0\ntimestamp: 5', 'bob')).pullers, ['bob']);
  assert.throws(() => appendPuller('placeholder%1.0\nbad line', 'bob'), corrupt());
});

test('formatMetadata: field order, optional fields, pullers, no trailing LF', () => {
  assert.equal(
    formatMetadata({ version: '9.9', pusher: 'alice', timestamp: 12, checksum: 'ab', parts: 3, pullers: ['bob', 'carol'] }),
    'placeholder%1.0\npusher: alice\ntimestamp: 12\nchecksum: ab\nparts: 3\n---pullers---\nbob\ncarol',
  );
  assert.equal(formatMetadata({ checksum: 'ab', pullers: [] }), 'placeholder%1.0\nchecksum: ab\n---pullers---');
  assert.equal(formatMetadata({ timestamp: 0, checksum: 'ab', pullers: [] }), 'placeholder%1.0\nchecksum: ab\n---pullers---');
  assert.equal(formatMetadata({ timestamp: 7, pullers: [] }), 'placeholder%1.0\ntimestamp: 7\n---pullers---');
});

test('formatMetadata refuses records 0.7 refuses or could not read back', () => {
  assert.throws(() => formatMetadata({ pusher: 'alice', pullers: [] }), corrupt('neither timestamp nor checksum'));
  assert.throws(() => formatMetadata({ timestamp: 0, pullers: ['bob'] }), corrupt('neither timestamp nor checksum'));
  assert.throws(() => formatMetadata({ timestamp: 1.5, pullers: [] }), corrupt('sane integer'));
  assert.throws(() => formatMetadata({ timestamp: 1700000000000, pullers: [] }), corrupt('sane integer'), 'milliseconds are caught');
  assert.throws(() => formatMetadata({ checksum: 'ABC', pullers: [] }), corrupt('hex'));
  const invalidName = (e: unknown): boolean => e instanceof EscaleError && e.code === 'InvalidName';
  assert.throws(() => formatMetadata({ pusher: 'a:b', timestamp: 1, pullers: [] }), invalidName);
  assert.throws(() => formatMetadata({ timestamp: 1, pullers: ['b\nc'] }), invalidName);
  assert.throws(() => formatMetadata({ timestamp: 1, pullers: [''] }), invalidName);
});

test('parseMetadata reads the current format', () => {
  assert.deepEqual(parseMetadata(`placeholder%1.0\npusher: alice\ntimestamp: 1700000000\nchecksum: ${CA}\n---pullers---\nbob`), {
    version: '1.0',
    pusher: 'alice',
    timestamp: 1700000000,
    checksum: CA,
    pullers: ['bob'],
  });
  assert.deepEqual(parseMetadata('placeholder%1.0\ntimestamp: 5\nparts: 2\n---pullers---'), { version: '1.0', timestamp: 5, parts: 2, pullers: [] });
});

test('parseMetadata: Python splitlines semantics, blank lines, trailing whitespace, CRLF', () => {
  const expected = { version: '1.0', pusher: 'alice', timestamp: 5, pullers: ['bob', 'carol'] };
  assert.deepEqual(parseMetadata('placeholder%1.0\r\npusher: alice\r\ntimestamp: 5\r\n---pullers---\r\nbob\r\ncarol\r\n'), expected);
  assert.deepEqual(parseMetadata('placeholder%1.0\rpusher: alice  \r\n\n\ntimestamp:    5\r---pullers---\x0bbob\x0ccarol'), expected);
  assert.deepEqual(parseMetadata('placeholder%1.0\u2028pusher: alice\x1ctimestamp: 5\x1d---pullers---\x1ebob\u0085carol\u2029'), expected);
});

test('parseMetadata: section markers', () => {
  for (const marker of ['---pullers---', '===Readers===', '+pullers', '#PULLERS#', '%readers']) {
    assert.deepEqual(parseMetadata(`placeholder%1.0\ntimestamp: 5\n${marker}\nbob\npusher: x`).pullers, ['bob', 'pusher: x'], marker);
  }
  assert.throws(() => parseMetadata('placeholder%1.0\ntimestamp: 5\n---group---\nbob'), corrupt('unknown section'));
});

test('parseMetadata: unknown keys are dropped; a line without exactly one colon is CorruptRecord', () => {
  assert.deepEqual(parseMetadata('placeholder%1.0\ntimestamp: 5\ncolour: blue\ntarget: x\n---pullers---'), { version: '1.0', timestamp: 5, pullers: [] });
  assert.throws(() => parseMetadata('placeholder%1.0\ntimestamp: 5\npusher: a:b\n---pullers---'), corrupt('exactly one'));
  assert.throws(() => parseMetadata('placeholder%1.0\njust words\n---pullers---'), corrupt('exactly one'));
});

test('parseMetadata: header without version, version defaulting, empty records', () => {
  assert.deepEqual(parseMetadata('x%\npusher: alice\ntimestamp: 5'), { version: '1.0', pusher: 'alice', timestamp: 5, pullers: [] });
  assert.deepEqual(parseMetadata('a%b%2.0\ntimestamp: 5'), { version: '2.0', timestamp: 5, pullers: [] });
  assert.deepEqual(parseMetadata(''), { pullers: [] });
  assert.deepEqual(parseMetadata('   \npusher: alice'), { pullers: [] });
});

test('parseMetadata: integers as Python int() reads them, and only sane ones', () => {
  assert.equal(parseMetadata('p%1.0\ntimestamp: +1_700_000_000 ').timestamp, 1700000000);
  assert.equal(parseMetadata('p%1.0\ntimestamp: -5').timestamp, -5);
  for (const bad of ['1.5', '', 'abc', '0x10', '99999999999999999999', '1e9', '1__0']) {
    assert.throws(() => parseMetadata(`p%1.0\ntimestamp: ${bad}\n---pullers---`), corrupt('timestamp'), bad);
  }
  assert.throws(() => parseMetadata('p%1.0\nparts: -1'), corrupt('parts'));
});

test('parseMetadata: hostile content is CorruptRecord with a clear message', () => {
  assert.throws(() => parseMetadata(`p%1.0\ntimestamp: 5\n---pullers---\n${'x'.repeat(70 * 1024)}`), corrupt('larger than 65536 bytes'));
  assert.throws(() => parseMetadata('p%1.0\nchecksum: xyz'), corrupt('not a hex digest'));
  assert.throws(() => parseMetadata('p%1.0\nchecksum: ab cd'), corrupt('not a hex digest'));
  assert.throws(() => parseMetadata('p%1.0\ntimestamp: 5\n---pullers---\nbo\x1bb'), corrupt('control characters'));
  assert.throws(() => parseMetadata('p%1.0\npusher: al\x00ice\ntimestamp: 5'), corrupt('control characters'));
  assert.throws(() => parseMetadata(Buffer.from([0x70, 0x25, 0xc3, 0x28])), corrupt('UTF-8'));
  assert.equal(parseMetadata(`p%1.0\nchecksum: ${CA.toUpperCase()}`).checksum, CA);
});

test('parseMetadata: legacy timestamp-only records (UTC %y%m%d_%H%M%S)', () => {
  assert.deepEqual(parseMetadata('231114_221320'), { timestamp: 1700000000, pullers: [] });
  assert.deepEqual(parseMetadata('231114_221320  \r\nbob\n\ncarol\n'), { timestamp: 1700000000, pullers: ['bob', 'carol'] });
  assert.deepEqual(parseMetadata('2023-11-14 22:13:20', { legacyTimestampFormat: '%Y-%m-%d %H:%M:%S' }), { timestamp: 1700000000, pullers: [] });
  assert.throws(() => parseMetadata('not a date'), corrupt('does not match'));
  assert.throws(() => parseMetadata('230231_000000'), corrupt('not a valid date'));
  assert.equal(parseLegacyTimestamp('690101_000000'), -31536000);
  assert.equal(parseLegacyTimestamp('680101_000000'), Date.UTC(2068, 0, 1) / 1000);
  assert.throws(() => parseLegacyTimestamp('x', '%j'), (e: unknown) => e instanceof EscaleError && e.code === 'Config');
});

test('distinctPullers de-duplicates, drops empty names and the excepted client', () => {
  const record = { pullers: ['bob', '', 'carol', 'bob', 'dave'] };
  assert.deepEqual(distinctPullers(record), ['bob', 'carol', 'dave']);
  assert.deepEqual(distinctPullers(record, 'carol'), ['bob', 'dave']);
  assert.deepEqual(distinctPullers(undefined), []);
});

test('shouldKeep: what each puller count does (relay-format.md P3.8, sync-rules.md R6)', () => {
  const none = { timestamp: 1, pullers: [] };
  const bob = { timestamp: 1, pullers: ['bob'] };
  const bobTwice = { timestamp: 1, pullers: ['bob', 'bob'] };
  const bobCarol = { timestamp: 1, pullers: ['bob', 'carol'] };
  const five = { timestamp: 1, pullers: ['b', 'c', 'd', 'e', 'f'] };
  // unset and 1: the first puller removes the data.
  for (const count of [undefined, 1]) {
    assert.equal(shouldKeep(none, count, 'dave'), false);
    assert.equal(shouldKeep(bob, count, 'dave'), false);
  }
  // 2: the first puller keeps it, the second distinct puller removes it.
  assert.equal(shouldKeep(none, 2, 'bob'), true);
  assert.equal(shouldKeep(bob, 2, 'carol'), false);
  assert.equal(shouldKeep(bob, 2, 'bob'), true, 'the same puller again does not count twice');
  assert.equal(shouldKeep(bobTwice, 2, 'bob'), true, 'duplicate lines count once');
  // 3: kept for the first two distinct pullers, removed by the third.
  assert.equal(shouldKeep(none, 3, 'bob'), true);
  assert.equal(shouldKeep(bob, 3, 'carol'), true);
  assert.equal(shouldKeep(bobTwice, 3, 'carol'), true);
  assert.equal(shouldKeep(bobCarol, 3, 'dave'), false);
  // 6: removed by the sixth distinct puller (0.7 never removed it: relay-format.md F-6).
  assert.equal(shouldKeep(bobCarol, 6, 'dave'), true);
  assert.equal(shouldKeep(five, 6, 'g'), false);
  assert.equal(shouldKeep(five, 6, 'b'), true);
  // Without a placeholder no puller can be recorded: never kept.
  assert.equal(shouldKeep(undefined, 3, 'bob'), false);
});

test('clientNameProblem names what makes a client name unusable', () => {
  assert.equal(clientNameProblem('alice-1.home_2'), undefined);
  assert.match(clientNameProblem('a:b') ?? '', /':'/);
  assert.match(clientNameProblem(' a') ?? '', /whitespace/);
  assert.match(clientNameProblem('a\nb') ?? '', /control/);
  assert.match(clientNameProblem('') ?? '', /empty/);
});

function filesUnder(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix)).flatMap((name) => {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    return statSync(join(root, rel)).isDirectory() ? filesUnder(root, rel) : [rel];
  });
}

const SOURCES: Record<string, number> = { 'a.txt': 1700000000, 'dir/b.bin': 1700000100, 'dir/sub/unicode-é.txt': 1700000200, 'empty.txt': 1700000300 };

for (const scenario of ['placeholder-plain', 'placeholder-pullers2', 'placeholder-fernet', 'placeholder-blowfish']) {
  for (const stage of ['relay-after-push', 'relay-after-pull']) {
    test(`every placeholder of fixture ${scenario}/${stage} parses and formats back to the same bytes`, () => {
      const root = join(FIXTURES, scenario, stage);
      const placeholders = filesUnder(root).filter((f) => f.split('/').pop()?.endsWith('.placeholder'));
      assert.equal(placeholders.length, 4);
      for (const file of placeholders) {
        const bytes = readFileSync(join(root, file));
        const resource = file.replace(/(^|\/)\.([^/]+)\.placeholder$/, '$1$2');
        const record = parseMetadata(bytes);
        assert.equal(record.version, '1.0');
        assert.equal(record.pusher, 'alice');
        assert.equal(record.timestamp, SOURCES[resource], file);
        assert.equal(record.checksum, sha512(readFileSync(join(FIXTURES, scenario, 'source', resource))), `${file}: checksum of the plaintext`);
        // 0.7 records bob after a pull only with puller count unset (with 2 it writes the record back unchanged: relay-format.md F-6).
        const expectedPullers = stage === 'relay-after-pull' && scenario !== 'placeholder-pullers2' ? ['bob'] : [];
        assert.deepEqual(record.pullers, expectedPullers, file);
        assert.equal(formatMetadata(record), bytes.toString('utf8'), `${file}: byte-identical round trip`);
        assert.equal(bytes.length, 204 + (expectedPullers.length > 0 ? 4 : 0));
      }
    });
  }
}

test('records parsed from different placeholders share their names and puller lists, and equal what was written', () => {
  const written = { version: '1.0', pusher: 'alice', timestamp: 1_700_000_000, checksum: 'ab'.repeat(64), pullers: ['bob', 'carol'] };
  const a = parseMetadata(formatMetadata(written));
  const b = parseMetadata(formatMetadata({ ...written, checksum: 'cd'.repeat(64) }));
  assert.deepEqual(a, written);
  assert.equal(a.pullers, b.pullers, 'one puller list for both');
  assert.ok(Object.isFrozen(a.pullers));
  assert.equal(b.checksum, 'cd'.repeat(64));
});
