import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RelPath } from '../core/relpath.js';
import { decideConsumption, decidePullEntry, pullersAfterRecording, pushNeedsChecksum, selectPushBatch, transferReport, uploadRepeats, type PullEntryContext } from './index-planner.js';
import type { LocalFile, MetadataRecord } from './model.js';

const p = (s: string) => s as RelPath;
const file = (path: string, size: number, mtimeSec: number, checksum?: string): LocalFile => ({ path: p(path), size, mtimeMs: mtimeSec * 1000 + 250, ...(checksum ? { checksum } : {}) });
const rec = (timestamp: number | undefined, checksum: string | undefined, pusher = 'alice'): MetadataRecord => ({ version: '1.0', pusher, ...(timestamp === undefined ? {} : { timestamp }), ...(checksum ? { checksum } : {}), pullers: [] });
const on = { useMtime: true, useChecksum: true };

describe('push batch (relay-protocol §4.8 E, §4.5)', () => {
  const index = new Map<RelPath, MetadataRecord>([
    [p('same-mtime'), rec(100, 'aa')],
    [p('same-content'), rec(100, 'bb')],
    [p('newer'), rec(100, 'cc')],
    [p('older'), rec(300, 'dd')],
  ]);
  const rows: [string, LocalFile, string][] = [
    ['no entry: send-new', file('new', 1, 1), 'send-new'],
    ['equal mtime (step 0): skip', file('same-mtime', 1, 100, 'zz'), 'skip-unchanged'],
    ['equal checksum: skip', file('same-content', 1, 200, 'bb'), 'skip-unchanged'],
    ['local newer, other content: send-update', file('newer', 1, 200, 'xx'), 'send-update'],
    ['local older, other content: skip', file('older', 1, 200, 'xx'), 'skip-unchanged'],
  ];
  for (const [name, f, outcome] of rows) {
    test(name, () => {
      const batch = selectPushBatch({ ...on, files: [f], index, maxBytes: 1e9 });
      assert.equal(batch.decisions[0]?.outcome, outcome);
    });
  }
  test('both detectors off: everything is sent', () => {
    const batch = selectPushBatch({ useMtime: false, useChecksum: false, files: [file('same-mtime', 1, 100)], index, maxBytes: 1e9 });
    assert.equal(batch.decisions[0]?.outcome, 'send-update');
  });
  test('maxpagesize: the file that crosses the limit is the last one (an update may exceed it by one file)', () => {
    const files = [file('a', 400, 1), file('b', 400, 1), file('c', 400, 1), file('d', 400, 1)];
    const batch = selectPushBatch({ ...on, files, index: new Map(), maxBytes: 1000 });
    assert.deepEqual(batch.send.map((f) => f.path), ['a', 'b', 'c']);
    assert.deepEqual(batch.rest.map((f) => f.path), ['d']);
    assert.equal(batch.bytes, 1200);
  });
  test('a checksum is needed only when the mtimes differ', () => {
    assert.equal(pushNeedsChecksum(file('x', 1, 100), rec(100, 'aa'), on), false);
    assert.equal(pushNeedsChecksum(file('x', 1, 101), rec(100, 'aa'), on), true);
    assert.equal(pushNeedsChecksum(file('x', 1, 101), undefined, on), false);
  });
});

describe('pull entries (cli-and-config §5.6, I1-I5)', () => {
  const base: PullEntryContext = { mode: 'download', trust: false, lookupMissing: false, ...on, acceptsRemote: (path) => !path.endsWith('.tmp'), access: (path) => (path === 'ro' ? { write: false } : {}) };
  const rows: [string, string, MetadataRecord, LocalFile | undefined, Partial<PullEntryContext>, string, string][] = [
    ['filtered', 'x.tmp', rec(1, 'a'), undefined, {}, 'I1', 'skip-filtered'],
    ['w- access', 'ro', rec(1, 'a'), undefined, {}, 'I1', 'skip-access'],
    ['trust + lookup + present', 'x', rec(9, 'a'), file('x', 1, 1), { trust: true, lookupMissing: true }, 'I2', 'skip-trusted-present'],
    ['present, no metadata', 'x', { pullers: [] }, file('x', 1, 1), {}, 'I3', 'skip-no-metadata'],
    ['present, equal mtime', 'x', rec(1, 'a'), file('x', 1, 1, 'b'), {}, 'I4', 'skip-not-newer'],
    ['present, relay older', 'x', rec(1, 'a'), file('x', 1, 5, 'b'), {}, 'I4', 'skip-not-newer'],
    ['present, relay newer', 'x', rec(9, 'a'), file('x', 1, 5, 'b'), {}, 'I5', 'want-update'],
    ['present, trust outside lookup', 'x', rec(1, 'a'), file('x', 1, 5, 'b'), { trust: true }, 'I5', 'want-update'],
    ['absent', 'x', rec(1, 'a'), undefined, {}, 'I5', 'want-new'],
  ];
  for (const [name, path, record, local, context, rule, outcome] of rows) {
    test(`${rule} ${name}`, () => {
      const d = decidePullEntry(p(path), record, local, { ...base, ...context });
      assert.deepEqual([d.rule, d.outcome], [rule, outcome]);
    });
  }
});

describe('consumption (§4.10 with D-3 and D-4 fixed)', () => {
  const entries = (pusher: string) => new Map<RelPath, MetadataRecord>([[p('a'), rec(1, 'a', pusher)]]);
  const rows: [string, string, number | undefined, string[], string][] = [
    ['own update is never consumed (D-3)', 'alice', undefined, [], 'own-update'],
    ['unset puller count: first consumer deletes', 'bob', undefined, [], 'delete'],
    ['puller count 2, first puller records', 'bob', 2, [], 'record'],
    ['puller count 2, phantom empty names do not count', 'bob', 2, ['', ''], 'record'],
    ['puller count 2, second distinct puller deletes', 'carol', 2, ['bob', ''], 'delete'],
    ['puller count 2, the same puller again', 'bob', 2, ['bob', ''], 'already-recorded'],
    ['puller count 2, the pusher in the list does not count', 'bob', 2, ['alice', ''], 'record'],
  ];
  for (const [name, client, count, pullers, outcome] of rows) {
    test(name, () => assert.equal(decideConsumption({ client, ...(count === undefined ? {} : { pullerCount: count }), entries: entries('alice'), pullers }), outcome));
  }
  test('an update without entries (orphan data) is deleted by its first reader', () => {
    assert.equal(decideConsumption({ client: 'alice', entries: new Map(), pullers: [] }), 'delete');
  });
  test('recorded pullers: distinct, non-empty, own name last', () => {
    assert.deepEqual(pullersAfterRecording(['bob', '', 'bob', ''], 'carol'), ['bob', 'carol']);
  });
});

test('upload repeats in upload mode and with priority = upload in shared/conservative', () => {
  assert.equal(uploadRepeats('upload', undefined), true);
  assert.equal(uploadRepeats('shared', undefined), false);
  assert.equal(uploadRepeats('shared', 'upload'), true);
  assert.equal(uploadRepeats('conservative', 'upload'), true);
  assert.equal(uploadRepeats('download', 'upload'), false);
});

test('transfer report lines (§8.6)', () => {
  assert.deepEqual(transferReport([p('a.txt'), p('dir/b.bin'), p('dir/c')]), ["'a.txt'", "in 'dir':", " + 'b.bin'", " + 'c'"]);
});
