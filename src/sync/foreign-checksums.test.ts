import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import { digestFamily, ForeignChecksums } from './foreign-checksums.js';
import type { MetadataRecord } from '../relay/protocol/records.js';

const rec = (pusher: string, digits: number): MetadataRecord => ({ version: '1.0', pusher, timestamp: 1_700_000_000, checksum: 'a'.repeat(digits), pullers: [] });

test('a digest whose length cannot come from this client\'s algorithm is hidden from decisions, kept for writing back, and reported once per pusher', () => {
  const records: LogRecord[] = [];
  const foreign = new ForeignChecksums('sha512', createLogger([memorySink(records)]));
  const own = rec('bob', 128);
  assert.equal(foreign.view(own), own, 'a digest of this length is compared as usual');
  const sha1 = rec('alice', 40);
  const seen = foreign.view(sha1);
  assert.equal(seen.checksum, undefined);
  assert.deepEqual({ ...seen, checksum: sha1.checksum }, sha1, 'only the checksum is hidden');
  assert.equal(foreign.original(seen), sha1, 'the record as read, for what is written back to the relay');
  assert.equal(foreign.original(own), own);
  foreign.view(rec('alice', 40));
  foreign.view(rec('carol', 64));
  foreign.view(rec('alice', 32));
  const warnings = records.filter((r) => r.level === 'warning').map((r) => r.message);
  assert.equal(warnings.length, 3, warnings.join('\n'));
  assert.match(warnings[0] as string, /^files pushed by 'alice' carry checksums of sha1 \(40 hex digits\), not of this client's algorithm sha512 \(128 hex digits\): they are compared by modification time instead/);
  assert.match(warnings[1] as string, /'carol' carry checksums of sha256 \(64 hex digits\)/);
  assert.match(warnings[2] as string, /'alice' carry checksums of md5 \(32 hex digits\)/, 'a pusher that changes algorithm is news');
});

test('viewAll returns the same map when no record is foreign; checksums off change nothing', () => {
  const logger = createLogger([]);
  const map = new Map([['a', rec('bob', 128)]]);
  assert.equal(new ForeignChecksums('sha512', logger).viewAll(map), map);
  const mixed = new Map([['a', rec('bob', 128)], ['b', rec('alice', 40)]]);
  const seen = new ForeignChecksums('sha512', logger).viewAll(mixed);
  assert.notEqual(seen, mixed);
  assert.deepEqual([...seen.values()].map((r) => r.checksum?.length), [128, undefined]);
  assert.equal(new ForeignChecksums(null, logger).viewAll(mixed), mixed);
  assert.equal(digestFamily(33), 'an unknown algorithm (33 hex digits)');
});
