import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EscaleError } from '../../core/errors.js';
import { formatLock, parseLock } from './lock.js';

const corrupt = (e: unknown): boolean => e instanceof EscaleError && e.code === 'CorruptRecord';

test('formatLock writes the 29-byte upload lock of relay-format.md P2.1 and the 27-byte download lock', () => {
  const w = formatLock({ owner: 'alice', mode: 'w' });
  assert.equal(w, 'lock%1.0\nowner: alice\nmode: w');
  assert.equal(Buffer.byteLength(w), 29);
  assert.equal(Buffer.byteLength(formatLock({ owner: 'bob', mode: 'r' })), 27);
  assert.equal(formatLock({ owner: 'alice' }), 'lock%1.0\nowner: alice');
});

test('formatLock refuses a missing owner or one that would not read back', () => {
  for (const owner of [undefined, '', ' alice', 'al\nice', 'al\rice']) {
    assert.throws(() => formatLock({ ...(owner === undefined ? {} : { owner }), mode: 'w' }), (e: unknown) => e instanceof EscaleError && e.code === 'InvalidName');
  }
});

test('parseLock reads what formatLock writes, from bytes or text', () => {
  assert.deepEqual(parseLock(Buffer.from('lock%1.0\nowner: alice\nmode: w')), { version: '1.0', owner: 'alice', mode: 'w' });
  assert.deepEqual(parseLock('lock%1.0\nowner: bob\nmode: r'), { version: '1.0', owner: 'bob', mode: 'r' });
  assert.deepEqual(parseLock('lock%1.0\nowner: alice'), { version: '1.0', owner: 'alice' });
});

test('parseLock accepts CRLF and CR line ends, trailing LF and extra lines', () => {
  assert.deepEqual(parseLock('lock%1.0\r\nowner: alice\r\nmode: w\r\n'), { version: '1.0', owner: 'alice', mode: 'w' });
  assert.deepEqual(parseLock('lock%1.0\rowner: alice\rmode: r'), { version: '1.0', owner: 'alice', mode: 'r' });
  assert.deepEqual(parseLock('lock%1.0  \nsomething: else\nowner:   carol  \n'), { version: '1.0', owner: 'carol' });
});

test('parseLock: an empty file is an unclaimed lock; a header without owner has no owner', () => {
  assert.deepEqual(parseLock(''), {});
  assert.deepEqual(parseLock(new Uint8Array()), {});
  assert.deepEqual(parseLock('lock%1.0\nmode: w'), { version: '1.0', mode: 'w' });
});

test('parseLock: a legacy one-line lock is owned by the first line as read, LF included', () => {
  assert.deepEqual(parseLock('alice'), { owner: 'alice' });
  assert.deepEqual(parseLock('alice\n'), { owner: 'alice\n' });
  assert.deepEqual(parseLock('alice\r\nmore'), { owner: 'alice\n' });
});

test('parseLock refuses unknown modes, invalid UTF-8 and oversized records', () => {
  assert.throws(() => parseLock('lock%1.0\nowner: a\nmode: x'), corrupt);
  assert.throws(() => parseLock(Buffer.from([0x6c, 0xff, 0xfe])), corrupt);
  assert.throws(() => parseLock('x'.repeat(64 * 1024 + 1)), corrupt);
});
