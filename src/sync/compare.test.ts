import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareWithRecord } from './compare.js';
import { mtimeSecOf, type MetadataRecord } from '../relay/protocol/records.js';

const both = { useMtime: true, useChecksum: true };
const rec = (timestamp?: number, checksum?: string): MetadataRecord => ({
  pusher: 'alice',
  ...(timestamp === undefined ? {} : { timestamp }),
  ...(checksum === undefined ? {} : { checksum }),
  pullers: [],
});

test('mtimeSecOf truncates milliseconds toward zero', () => {
  assert.equal(mtimeSecOf(1_700_000_000_999), 1_700_000_000);
  assert.equal(mtimeSecOf(-1500), -1);
});

test('step 0 (index flavour only): equal mtimes are not modified even with different checksums', () => {
  const r = compareWithRecord('remote-newer', { mtimeSec: 100, checksum: 'b' }, rec(100, 'a'), { ...both, indexFlavour: true });
  assert.deepEqual([r.modified, r.step], [false, 0]);
  // placeholder flavour: the same input is the step-4 anomaly
  const p = compareWithRecord('remote-newer', { mtimeSec: 100, checksum: 'b' }, rec(100, 'a'), both);
  assert.deepEqual([p.modified, p.step], [true, 4]);
});

test('step 1: a missing local file is modified in both directions', () => {
  for (const direction of ['remote-newer', 'local-newer'] as const) {
    const r = compareWithRecord(direction, undefined, rec(100, 'a'), both);
    assert.deepEqual([r.modified, r.step], [true, 1]);
  }
});

test('step 2: equal checksums are not modified, whatever the mtimes, and report the mtime reset', () => {
  const r = compareWithRecord('local-newer', { mtimeSec: 500, checksum: 'a' }, rec(100, 'a'), both);
  assert.deepEqual([r.modified, r.step, r.resetLocalMtimeTo], [false, 2, 100]);
  const same = compareWithRecord('remote-newer', { mtimeSec: 100, checksum: 'a' }, rec(100, 'a'), both);
  assert.equal(same.resetLocalMtimeTo, undefined);
});

test('step 3: no relay timestamp is undetermined (not modified)', () => {
  const r = compareWithRecord('remote-newer', { mtimeSec: 100, checksum: 'b' }, rec(undefined, 'a'), both);
  assert.deepEqual([r.modified, r.step], [false, 3]);
  assert.equal(compareWithRecord('local-newer', { mtimeSec: 100 }, undefined, both).modified, false);
});

test('step 4: different checksums with equal mtimes are modified in both directions (anomaly)', () => {
  for (const direction of ['remote-newer', 'local-newer'] as const) {
    const r = compareWithRecord(direction, { mtimeSec: 100, checksum: 'b' }, rec(100, 'a'), both);
    assert.deepEqual([r.modified, r.step], [true, 4]);
  }
});

test('steps 5 and 6: otherwise the newer mtime wins', () => {
  assert.equal(compareWithRecord('remote-newer', { mtimeSec: 99 }, rec(100), both).modified, true);
  assert.equal(compareWithRecord('remote-newer', { mtimeSec: 100 }, rec(100), both).modified, false);
  assert.equal(compareWithRecord('remote-newer', { mtimeSec: 101 }, rec(100), both).modified, false);
  assert.equal(compareWithRecord('local-newer', { mtimeSec: 101 }, rec(100), both).modified, true);
  assert.equal(compareWithRecord('local-newer', { mtimeSec: 100 }, rec(100), both).modified, false);
  assert.equal(compareWithRecord('local-newer', { mtimeSec: 99, checksum: 'b' }, rec(100, 'a'), both).step, 6);
});

test('timestamps off, checksums on: a differing file is never newer; equal checksums still match', () => {
  const options = { useMtime: false, useChecksum: true };
  for (const direction of ['remote-newer', 'local-newer'] as const) {
    for (const mtimeSec of [1, 100, 10_000]) {
      const r = compareWithRecord(direction, { mtimeSec, checksum: 'b' }, rec(100, 'a'), options);
      assert.deepEqual([r.modified, r.step], [false, 3]);
    }
  }
  const same = compareWithRecord('local-newer', { mtimeSec: 5, checksum: 'a' }, rec(100, 'a'), options);
  assert.deepEqual([same.modified, same.step, same.resetLocalMtimeTo], [false, 2, undefined]);
});

test('checksums off: known checksums are ignored and mtimes decide', () => {
  const options = { useMtime: true, useChecksum: false };
  const r = compareWithRecord('local-newer', { mtimeSec: 200, checksum: 'a' }, rec(100, 'a'), options);
  assert.deepEqual([r.modified, r.step], [true, 6]);
  const equal = compareWithRecord('remote-newer', { mtimeSec: 100, checksum: 'b' }, rec(100, 'a'), options);
  assert.deepEqual([equal.modified, equal.step], [false, 5]);
});

test('a missing local checksum is unknown, not different', () => {
  const r = compareWithRecord('remote-newer', { mtimeSec: 100 }, rec(100, 'a'), both);
  assert.deepEqual([r.modified, r.step], [false, 5]);
});
