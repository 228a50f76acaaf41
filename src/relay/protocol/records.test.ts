import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metadataRecord } from './records.js';

test('metadataRecord holds exactly the defined fields, in the record order, whatever the shape', () => {
  const full = metadataRecord('1.0', 'alice', 1_700_000_000, 'ab', undefined, ['bob']);
  assert.deepEqual(full, { version: '1.0', pusher: 'alice', timestamp: 1_700_000_000, checksum: 'ab', pullers: ['bob'] });
  assert.deepEqual(Object.keys(full), ['version', 'pusher', 'timestamp', 'checksum', 'pullers']);
  const legacy = metadataRecord(undefined, undefined, 1_700_000_000, undefined, undefined, []);
  assert.deepEqual(legacy, { timestamp: 1_700_000_000, pullers: [] });
  assert.equal('checksum' in legacy, false, 'an absent field is not an own key');
  const parted = metadataRecord('1.0', 'alice', 5, 'cd', 3, []);
  assert.deepEqual(Object.keys(parted), ['version', 'pusher', 'timestamp', 'checksum', 'parts', 'pullers']);
  assert.equal(parted.parts, 3);
});
