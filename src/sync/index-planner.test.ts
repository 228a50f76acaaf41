import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RelPath } from '../core/relpath.js';
import { decideConsumption, decidePullEntry, pullersAfterRecording, pullNeedsChecksum, pushNeedsChecksum, selectPushBatch, transferReport, uploadRepeats, type PullEntryContext } from './index-planner.js';
import type { LocalFile } from './model.js';
import type { MetadataRecord } from '../relay/protocol/records.js';
import type { BaseVersion } from '../local/base-store.js';

const p = (s: string) => s as RelPath;
const file = (path: string, size: number, mtimeSec: number, checksum?: string): LocalFile => ({ path: p(path), size, mtimeMs: mtimeSec * 1000 + 250, ...(checksum ? { checksum } : {}) });
const rec = (timestamp: number | undefined, checksum: string | undefined, pusher = 'alice'): MetadataRecord => ({ version: '1.0', pusher, ...(timestamp === undefined ? {} : { timestamp }), ...(checksum ? { checksum } : {}), pullers: [] });
const on = { useMtime: true, useChecksum: true };
const noBase = { base: new Map<RelPath, BaseVersion>(), client: 'me' };

describe('push batch (relay-format.md P4.8 step 5, sync-rules.md R5.4)', () => {
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
      const batch = selectPushBatch({ ...on, ...noBase, files: [f], index, maxBytes: 1e9 });
      assert.equal(batch.decisions[0]?.outcome, outcome);
    });
  }
  test('both detectors off: everything is sent', () => {
    const batch = selectPushBatch({ useMtime: false, useChecksum: false, ...noBase, files: [file('same-mtime', 1, 100)], index, maxBytes: 1e9 });
    assert.equal(batch.decisions[0]?.outcome, 'send-update');
  });
  test('maxpagesize: the file that crosses the limit is the last one (an update may exceed it by one file)', () => {
    const files = [file('a', 400, 1), file('b', 400, 1), file('c', 400, 1), file('d', 400, 1)];
    const batch = selectPushBatch({ ...on, ...noBase, files, index: new Map(), maxBytes: 1000 });
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

describe('pull entries (sync-rules.md R5.2, I1-I5)', () => {
  const base: PullEntryContext = { mode: 'download', trust: false, lookupMissing: false, ...on, ...noBase, acceptsRemote: (path) => !path.endsWith('.tmp'), access: (path) => (path === 'ro' ? { write: false } : {}) };
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

describe('consumption (relay-format.md P4.10 with F-4 and F-5 fixed)', () => {
  const entries = (pusher: string) => new Map<RelPath, MetadataRecord>([[p('a'), rec(1, 'a', pusher)]]);
  const rows: [string, string, number | undefined, string[], string][] = [
    ['own update is never consumed (relay-format.md F-4)', 'alice', undefined, [], 'own-update'],
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

test('transfer report lines (sync-rules.md R1.2)', () => {
  assert.deepEqual(transferReport([p('a.txt'), p('dir/b.bin'), p('dir/c')]), ["'a.txt'", "in 'dir':", " + 'b.bin'", " + 'c'"]);
});

// The base dimension of the index flavour, cell by cell. The base is alice's version at t = 1000 s,
// content `aaaa`, as it lay in this folder (mtime 1000 s, ctime and inode known). The mtimes are
// chosen so that the index flavour without a base (step 0 and last-writer-wins) would decide the
// other way wherever only one side changed:
//   local unchanged = the base's identity; touched = content aaaa, mtime 1200 s; edited-same-second =
//   content cccc, mtime 1000 s (step 0 took it for unchanged); edited-behind = cccc, 500 s;
//   edited-ahead = cccc, 2000 s
//   entry unchanged = the base's record; changed-behind = bob's record at 900 s, content dddd.
// Neither changed → skip; only the local file → send (push) / keep (pull); only the entry → keep
// (push) / fetch (pull); both → last-writer-wins without a base (issue 16: conflict copies).
describe('the base dimension (what changed since this client last agreed with the relay)', () => {
  const AGREED: BaseVersion = { checksum: 'aaaa', size: 1, mtimeMs: 1_000_000, ctimeMs: 1_000_000.5, ino: '42', pusher: 'alice', timestamp: 1000 };
  const withBase = { base: new Map<RelPath, BaseVersion>([[p('x'), AGREED]]), client: 'me' };
  const locals: Record<string, LocalFile> = {
    unchanged: { path: p('x'), size: 1, mtimeMs: 1_000_000, ctimeMs: 1_000_000.5, ino: '42', checksum: 'aaaa' },
    touched: { path: p('x'), size: 1, mtimeMs: 1_200_000, ctimeMs: 1_200_000.5, ino: '42', checksum: 'aaaa' },
    'edited-same-second': { path: p('x'), size: 1, mtimeMs: 1_000_600, ctimeMs: 1_000_600.5, ino: '42', checksum: 'cccc' },
    'edited-behind': { path: p('x'), size: 1, mtimeMs: 500_000, ctimeMs: 1_300_000.5, ino: '42', checksum: 'cccc' },
    'edited-ahead': { path: p('x'), size: 1, mtimeMs: 2_000_000, ctimeMs: 2_000_000.5, ino: '42', checksum: 'cccc' },
  };
  // why: 'mine-ahead' is this client's own later push, whose agreement a crash lost (the base still names alice's version).
  const entries: Record<string, MetadataRecord> = { unchanged: rec(1000, 'aaaa'), 'changed-behind': rec(900, 'dddd', 'bob'), 'mine-ahead': rec(3000, 'eeee', 'me') };
  // prettier-ignore
  const PUSH: [local: string, entry: string, outcome: string, rule: string][] = [
    ['unchanged',          'unchanged',      'skip-unchanged',     'in sync'],
    ['touched',            'unchanged',      'skip-unchanged',     'in sync'],
    ['edited-same-second', 'unchanged',      'send-update',        'local changed (step 0 would skip it)'],
    ['edited-behind',      'unchanged',      'send-update',        'local changed (older mtime)'],
    ['edited-ahead',       'unchanged',      'send-update',        'local changed'],
    ['unchanged',          'changed-behind', 'skip-relay-changed', 'relay changed (the local mtime is newer)'],
    ['touched',            'changed-behind', 'skip-relay-changed', 'relay changed'],
    ['edited-same-second', 'changed-behind', 'send-update',        'both changed: last-writer-wins'],
    ['edited-behind',      'changed-behind', 'skip-unchanged',     'both changed: last-writer-wins'],
    ['edited-ahead',       'changed-behind', 'send-update',        'both changed: last-writer-wins'],
    ['touched',            'mine-ahead',     'send-update',        'own push differs (the mtimes say skip)'],
    ['edited-behind',      'mine-ahead',     'send-update',        'own push differs (the mtimes say skip)'],
    ['edited-ahead',       'mine-ahead',     'send-update',        'own push differs'],
  ];
  for (const [local, entry, outcome, rule] of PUSH) {
    test(`push | local ${local} | entry ${entry} → ${outcome} (${rule})`, () => {
      const batch = selectPushBatch({ ...on, ...withBase, files: [locals[local] as LocalFile], index: new Map([[p('x'), entries[entry] as MetadataRecord]]), maxBytes: 1e9 });
      assert.equal(batch.decisions[0]?.outcome, outcome);
    });
  }
  // prettier-ignore
  const PULL: [local: string, entry: string, trust: boolean, rule: string, outcome: string][] = [
    ['unchanged',          'unchanged',      false, 'base-same',  'skip-not-newer'],
    ['touched',            'unchanged',      false, 'base-same',  'skip-not-newer'],
    ['edited-behind',      'unchanged',      false, 'base-local', 'skip-not-newer'],
    ['edited-ahead',       'unchanged',      false, 'base-local', 'skip-not-newer'],
    ['edited-behind',      'unchanged',      true,  'base-local', 'skip-not-newer'],
    ['unchanged',          'changed-behind', false, 'base-relay', 'want-update'],
    ['touched',            'changed-behind', false, 'base-relay', 'want-update'],
    ['edited-behind',      'changed-behind', false, 'I5',      'want-update'],
    ['edited-ahead',       'changed-behind', false, 'I4',      'skip-not-newer'],
    ['edited-ahead',       'changed-behind', true,  'I5',      'want-update'],
    ['touched',            'mine-ahead',     false, 'own-push', 'skip-not-newer'],
    ['edited-behind',      'mine-ahead',     false, 'own-push', 'skip-not-newer'],
    ['edited-ahead',       'mine-ahead',     true,  'own-push', 'skip-not-newer'],
  ];
  const context: PullEntryContext = { mode: 'shared', trust: false, lookupMissing: false, ...on, ...withBase, acceptsRemote: () => true, access: () => ({}) };
  for (const [local, entry, trust, rule, outcome] of PULL) {
    test(`pull | local ${local} | entry ${entry}${trust ? ' | pull overwrite' : ''} → ${rule} ${outcome}`, () => {
      const d = decidePullEntry(p('x'), entries[entry] as MetadataRecord, locals[local], { ...context, trust });
      assert.deepEqual([d.rule, d.outcome], [rule, outcome]);
    });
  }
  test('without a base, the same cells follow the mtimes (step 0 and last-writer-wins)', () => {
    const none = { ...context, base: new Map<RelPath, BaseVersion>() };
    assert.equal(decidePullEntry(p('x'), entries['changed-behind'] as MetadataRecord, locals['unchanged'], none).outcome, 'skip-not-newer');
    const batch = selectPushBatch({ ...on, ...noBase, files: [locals['edited-behind'] as LocalFile], index: new Map([[p('x'), entries['unchanged'] as MetadataRecord]]), maxBytes: 1e9 });
    assert.equal(batch.decisions[0]?.outcome, 'skip-unchanged');
  });
  test('without a base, an own push that differs follows the rules of 0.7 (a client set up again with a folder from a backup sends nothing over newer versions)', () => {
    const none = { ...context, base: new Map<RelPath, BaseVersion>() };
    assert.equal(decidePullEntry(p('x'), entries['mine-ahead'] as MetadataRecord, locals['edited-behind'], none).rule, 'I5');
    const batch = selectPushBatch({ ...on, ...noBase, files: [locals['edited-behind'] as LocalFile], index: new Map([[p('x'), entries['mine-ahead'] as MetadataRecord]]), maxBytes: 1e9 });
    assert.equal(batch.decisions[0]?.outcome, 'skip-unchanged');
  });
  test('identical content is flagged for a base record; an unchanged identity needs no checksum', () => {
    const same = { ...(locals['touched'] as LocalFile) };
    assert.equal(decidePullEntry(p('x'), rec(1000, 'aaaa'), same, { ...context, base: new Map() }).identical, true);
    const batch = selectPushBatch({ ...on, ...noBase, files: [same], index: new Map([[p('x'), rec(1000, 'aaaa')]]), maxBytes: 1e9 });
    assert.deepEqual(batch.decisions[0]?.identical, rec(1000, 'aaaa'));
    const { checksum: _unknown, ...unhashed } = locals['unchanged'] as LocalFile;
    assert.equal(pushNeedsChecksum(unhashed, rec(900, 'dddd'), on, AGREED), false);
    assert.equal(pushNeedsChecksum({ ...unhashed, mtimeMs: 5 }, rec(900, 'dddd'), on, AGREED), true);
    assert.equal(pullNeedsChecksum(unhashed, rec(900, 'dddd'), context), false);
  });
});
