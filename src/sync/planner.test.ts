import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relPath } from '../core/relpath.js';
import type { RelPath } from '../core/relpath.js';
import type { AccessRule, Action, LocalFile } from './model.js';
import type { MetadataRecord, RemoteFile } from '../relay/protocol/records.js';
import { classifyLocal, classifyRelay, keepOnRelayAfterPull, planPlaceholderRound, pulledTooEarly } from './planner.js';
import type { PlanInput, ResendRequests } from './planner.js';
import type { BaseVersion } from '../local/base-store.js';

const A = relPath('a.txt');
const B = relPath('dir/b.txt');
const C = relPath('dir/sub/c.txt');

function rec(overrides: Partial<MetadataRecord> = {}): MetadataRecord {
  return { version: '1.0', pusher: 'alice', timestamp: 1000, checksum: 'aaaa', pullers: [], ...overrides };
}
function remoteOf(path: RelPath, overrides: Partial<RemoteFile> = {}): RemoteFile {
  return { path, hasData: true, locked: false, record: rec(), size: 10, ...overrides };
}
function localOf(path: RelPath, mtimeSec: number, checksum?: string): LocalFile {
  return { path, size: 10, mtimeMs: mtimeSec * 1000, ...(checksum === undefined ? {} : { checksum }) };
}
function input(overrides: Partial<PlanInput> & { localFiles?: LocalFile[]; remoteFiles?: RemoteFile[]; rules?: Record<string, AccessRule> }): PlanInput {
  const { localFiles = [], remoteFiles = [], rules = {}, ...rest } = overrides;
  return {
    mode: 'shared',
    client: 'me',
    useMtime: true,
    useChecksum: true,
    local: new Map(localFiles.map((f) => [f.path, f])),
    remote: new Map(remoteFiles.map((f) => [f.path, f])),
    access: (path) => rules[path] ?? {},
    acceptsRemote: () => true,
    base: new Map(),
    ...rest,
  };
}
// why: `record-base` is bookkeeping (no transfer); the base scenarios below look at it on purpose.
const kinds = (plan: readonly Action[]): string[] => plan.filter((a) => a.kind !== 'note' && a.kind !== 'record-base').map((a) => `${a.kind} ${a.path}`);
function only<K extends Action['kind']>(plan: readonly Action[], kind: K): Extract<Action, { kind: K }>[] {
  return plan.filter((a): a is Extract<Action, { kind: K }> => a.kind === kind);
}

// --- puller count (keepOnRelay, sync-rules.md R6: distinct puller names) ---

for (const [count, pullers, keep] of [
  [undefined, [], false],
  [1, [], false],
  [2, [], true],
  [2, ['bob'], false],
  [3, [], true],
  [3, ['bob'], true],
  [3, ['bob', 'carol'], false],
  [3, ['bob', 'bob', ''], true],
  [3, ['me', 'bob'], true],
] as const) {
  test(`puller count ${String(count)} with pullers [${pullers.join(',')}] → keepOnRelay ${keep}`, () => {
    const plan = planPlaceholderRound(input({ ...(count === undefined ? {} : { pullerCount: count }), remoteFiles: [remoteOf(A, { record: rec({ pullers }) })] }));
    const [download] = only(plan, 'download');
    assert.ok(download);
    assert.equal(download.keepOnRelay, keep);
    assert.equal(keepOnRelayAfterPull(count, rec({ pullers }), 'me'), keep);
  });
}

test('D4 with puller count 1: identical content is consumed as a duplicate', () => {
  const plan = planPlaceholderRound(input({ pullerCount: 1, localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(only(plan, 'consume'), [{ kind: 'consume', path: A, reason: 'duplicate', local: localOf(A, 1000, 'aaaa'), record: rec() }]);
  assert.deepEqual(kinds(plan), ['consume a.txt']);
  assert.deepEqual(only(plan, 'record-base'), [], 'the consumption records the base itself');
});

test('D4 with puller count 1: an outdated relay copy is consumed, then the newer local file is uploaded', () => {
  const plan = planPlaceholderRound(input({ pullerCount: 1, localFiles: [localOf(A, 2000, 'bbbb')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), ['consume a.txt', 'upload a.txt']);
  assert.equal(only(plan, 'consume')[0]?.reason, 'outdated');
});

test('D4 with puller count 1: no consume when this client already pulled it (no double count)', () => {
  const plan = planPlaceholderRound(input({ pullerCount: 1, localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [remoteOf(A, { record: rec({ pullers: ['me'] }) })] }));
  assert.deepEqual(kinds(plan), []);
});

test('D4 with puller count 1: no consume when the comparison is undetermined', () => {
  // equal mtimes but no checksums: not "identical", not "outdated"
  const plan = planPlaceholderRound(input({ pullerCount: 1, useChecksum: false, localFiles: [localOf(A, 1000)], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), []);
  // record without timestamp
  const noTime = planPlaceholderRound(input({ pullerCount: 1, localFiles: [localOf(A, 1000, 'bbbb')], remoteFiles: [remoteOf(A, { record: rec({ timestamp: undefined }) })] }));
  assert.deepEqual(kinds(noTime), []);
  assert.ok(noTime.some((a) => a.kind === 'note' && a.level === 'warning' && a.message.includes('corrupt meta information')));
});

test('D4 with puller count unset: identical content is neither consumed nor registered', () => {
  const plan = planPlaceholderRound(input({ localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), []);
});

for (const count of [2, 3] as const) {
  test(`D4 with puller count ${count}: identical content registers this client as puller, never consumes nor downloads`, () => {
    const plan = planPlaceholderRound(input({ pullerCount: count, localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [remoteOf(A, { record: rec({ pullers: ['bob'] }) })] }));
    assert.deepEqual(kinds(plan), ['register-puller a.txt']);
    assert.deepEqual(only(plan, 'register-puller')[0]?.record, rec({ pullers: ['bob'] }));
  });

  test(`D4 with puller count ${count}: no registration when this client is already recorded, or the content differs`, () => {
    const recorded = remoteOf(A, { record: rec({ pullers: ['bob', 'me'] }) });
    assert.deepEqual(kinds(planPlaceholderRound(input({ pullerCount: count, localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [recorded] }))), []);
    // a newer local file is pushed, not registered for the relay's older version
    assert.deepEqual(kinds(planPlaceholderRound(input({ pullerCount: count, localFiles: [localOf(A, 2000, 'bbbb')], remoteFiles: [remoteOf(A)] }))), ['upload a.txt']);
    // without checksums, equal mtimes do not prove identical content
    assert.deepEqual(kinds(planPlaceholderRound(input({ pullerCount: count, useChecksum: false, localFiles: [localOf(A, 1000)], remoteFiles: [remoteOf(A)] }))), []);
  });
}

// --- own pushes, locks, data-less records ---

test('a relay file pushed by this client is never downloaded nor consumed (puller count 1)', () => {
  const own = remoteOf(A, { record: rec({ pusher: 'me' }) });
  assert.deepEqual(kinds(planPlaceholderRound(input({ pullerCount: 1, remoteFiles: [own] }))), []);
  assert.deepEqual(kinds(planPlaceholderRound(input({ pullerCount: 1, localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [own] }))), []);
  assert.deepEqual(kinds(planPlaceholderRound(input({ mode: 'download', remoteFiles: [own] }))), []);
});

test('a locked resource is skipped in both phases with a debug note', () => {
  const plan = planPlaceholderRound(input({ localFiles: [localOf(A, 2000, 'bbbb')], remoteFiles: [remoteOf(A, { locked: true }), remoteOf(B, { locked: true })] }));
  assert.deepEqual(kinds(plan), []);
  const notes = only(plan, 'note');
  assert.deepEqual(notes.map((n) => [n.path, n.level]), [[A, 'debug'], [B, 'debug']]);
  const uploadOnly = planPlaceholderRound(input({ phase: 'upload', localFiles: [localOf(A, 2000, 'bbbb')], remoteFiles: [remoteOf(A, { locked: true })] }));
  assert.deepEqual(only(uploadOnly, 'note').map((n) => n.level), ['debug']);
});

test('a record without data is not a download candidate', () => {
  const plan = planPlaceholderRound(input({ mode: 'download', remoteFiles: [remoteOf(A, { hasData: false })] }));
  assert.deepEqual(plan, []);
});

// --- D3 fix and metadata problems ---

test('D3: relay data without a record next to a local copy is left in place with a warning (never deleted)', () => {
  const plan = planPlaceholderRound(input({ mode: 'download', pullerCount: 1, localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [remoteOf(A, { record: undefined, recordProblem: 'unknown line "zzz"' })] }));
  assert.deepEqual(kinds(plan), []);
  const [note] = only(plan, 'note');
  assert.equal(note?.level, 'warning');
  assert.match(note?.message ?? '', /missing meta information for file 'a\.txt' \(unknown line "zzz"\); the relay copy is left in place/);
});

test('D3-no-local: relay data beside a junk placeholder, or without one, is never downloaded unverified; its pusher re-sends it (U4)', () => {
  for (const remote of [remoteOf(A, { record: undefined, recordProblem: 'unknown line "zzz"' }), remoteOf(A, { record: undefined })]) {
    for (const mode of ['shared', 'download', 'conservative'] as const) {
      const plan = planPlaceholderRound(input({ mode, remoteFiles: [remote] }));
      assert.deepEqual(kinds(plan), [], mode);
      const [note] = only(plan, 'note');
      assert.equal(note?.level, 'warning');
      assert.match(note?.message ?? '', /missing meta information for file 'a\.txt'.*left in place until its pusher sends it again/);
    }
    const pusher = planPlaceholderRound(input({ localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [remote] }));
    assert.deepEqual(only(pusher, 'upload').map((u) => u.reason), ['refresh-metadata']);
  }
});

test('U4: an unreadable placeholder without data makes the local file be sent again', () => {
  const plan = planPlaceholderRound(input({ mode: 'upload', localFiles: [localOf(A, 1000, 'aaaa')], remoteFiles: [remoteOf(A, { hasData: false, record: undefined, recordProblem: 'bad header' })] }));
  assert.deepEqual(only(plan, 'upload').map((u) => u.reason), ['refresh-metadata']);
});

// --- comparisons and options ---

test('identical content is never re-sent even when mtimes differ; the mtime reset is only a note', () => {
  const files = { localFiles: [localOf(A, 5000, 'aaaa')], remoteFiles: [remoteOf(A, { record: rec({ pusher: 'me' }) })] };
  const shared = planPlaceholderRound(input(files));
  assert.deepEqual(kinds(shared), []);
  const notes = only(shared, 'note');
  assert.equal(notes.length, 1);
  assert.equal(notes[0]?.resetLocalMtimeTo, 1000);
  // upload mode never changes local files: no reset proposed
  const upload = planPlaceholderRound(input({ ...files, mode: 'upload' }));
  assert.deepEqual(upload.map((a) => a.kind), ['record-base']);
});

test('identical content from another client: one note and one base record per path even in a two-phase plan', () => {
  const plan = planPlaceholderRound(input({ localFiles: [localOf(A, 5000, 'aaaa')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(plan.map((a) => a.kind), ['note', 'record-base']);
});

test('timestamps off, checksums on: a differing file is never transferred once a record exists', () => {
  for (const mtimeSec of [1, 1000, 99_999]) {
    const plan = planPlaceholderRound(input({ useMtime: false, pullerCount: 1, localFiles: [localOf(A, mtimeSec, 'bbbb')], remoteFiles: [remoteOf(A)] }));
    assert.deepEqual(kinds(plan), [], `mtime ${mtimeSec}`);
    assert.ok(plan.every((a) => a.kind === 'note' && a.level === 'debug'));
  }
  // but identical content is still recognised (and consumed with puller count 1)
  const same = planPlaceholderRound(input({ useMtime: false, pullerCount: 1, localFiles: [localOf(A, 1, 'aaaa')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(same), ['consume a.txt']);
});

test('U3: with timestamps and checksums off, known files are never re-sent but new ones are', () => {
  const plan = planPlaceholderRound(input({ mode: 'upload', useMtime: false, useChecksum: false, localFiles: [localOf(A, 9000), localOf(B, 9000)], remoteFiles: [remoteOf(A, { hasData: false })] }));
  assert.deepEqual(kinds(plan), ['upload dir/b.txt']);
});

test('an upload carries the scanned local file; a download carries the record and the replaced file', () => {
  const local = localOf(A, 900, 'bbbb');
  const plan = planPlaceholderRound(input({ localFiles: [local, localOf(B, 3000, 'cccc')], remoteFiles: [remoteOf(A), remoteOf(B)] }));
  const [download] = only(plan, 'download');
  assert.deepEqual(download, { kind: 'download', path: A, reason: 'update', record: rec(), keepOnRelay: false, replaces: local });
  const [upload] = only(plan, 'upload');
  assert.deepEqual(upload, { kind: 'upload', path: B, reason: 'update', local: localOf(B, 3000, 'cccc'), replacesData: true });
});

// --- conservative mode and its automatic flags (sync-rules.md R7.2) ---

test('conservative: a file received earlier (w+) follows remote updates', () => {
  const plan = planPlaceholderRound(input({ mode: 'conservative', rules: { [A]: { write: true } }, localFiles: [localOf(A, 900, 'bbbb')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), ['download a.txt']);
});

test('conservative: a file pushed locally (w-) is frozen', () => {
  const plan = planPlaceholderRound(input({ mode: 'conservative', rules: { [A]: { write: false } }, localFiles: [localOf(A, 900, 'bbbb')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), []);
});

test('conservative: a pre-existing local file with an unset flag is protected (w- recorded, no download)', () => {
  const plan = planPlaceholderRound(input({ mode: 'conservative', localFiles: [localOf(A, 900, 'bbbb')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(only(plan, 'set-access'), [{ kind: 'set-access', path: A, modifiers: 'w-', reason: 'protect-pre-existing' }]);
  assert.deepEqual(kinds(plan), ['set-access a.txt']);
});

test('conservative: a missing local file with an unset flag is downloaded', () => {
  const plan = planPlaceholderRound(input({ mode: 'conservative', remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), ['download a.txt']);
});

test('conservative: no protection for own pushes, locked or data-less resources', () => {
  const plan = planPlaceholderRound(input({
    mode: 'conservative',
    localFiles: [localOf(A, 1000, 'aaaa'), localOf(B, 1000, 'aaaa'), localOf(C, 1000, 'aaaa')],
    remoteFiles: [remoteOf(A, { record: rec({ pusher: 'me' }) }), remoteOf(B, { locked: true }), remoteOf(C, { hasData: false })],
  }));
  assert.deepEqual(only(plan, 'set-access'), []);
});

// --- phases, order, filters ---

test('phase download plans no uploads and phase upload plans no downloads', () => {
  const files = { localFiles: [localOf(B, 5000, 'cccc')], remoteFiles: [remoteOf(A)] };
  assert.deepEqual(kinds(planPlaceholderRound(input({ ...files, phase: 'download' }))), ['download a.txt']);
  assert.deepEqual(kinds(planPlaceholderRound(input({ ...files, phase: 'upload' }))), ['upload dir/b.txt']);
  assert.deepEqual(kinds(planPlaceholderRound(input(files))), ['download a.txt', 'upload dir/b.txt']);
});

test('mode wins over phase: upload mode never downloads, download mode never uploads', () => {
  const files = { localFiles: [localOf(B, 5000, 'cccc')], remoteFiles: [remoteOf(A)] };
  assert.deepEqual(kinds(planPlaceholderRound(input({ ...files, mode: 'upload', phase: 'download' }))), []);
  assert.deepEqual(kinds(planPlaceholderRound(input({ ...files, mode: 'download', phase: 'upload' }))), []);
});

test('a both-phase plan does not upload a path it downloads (conflict: the relay copy wins, as in the original)', () => {
  const plan = planPlaceholderRound(input({ localFiles: [localOf(A, 1000, 'bbbb')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), ['download a.txt']);
});

test('the plan is deterministic: downloads then uploads, each in path order, whatever the map order', () => {
  const localFiles = [localOf(C, 5000, 'x'), localOf(A, 5000, 'y'), localOf(relPath('Z.txt'), 5000, 'z'), localOf(relPath('dir/a.txt'), 5000, 'w')];
  const remoteFiles = [remoteOf(relPath('r/2')), remoteOf(relPath('r/10')), remoteOf(relPath('R/1')), remoteOf(B, { record: rec({ pusher: 'bob' }) })];
  const first = planPlaceholderRound(input({ localFiles, remoteFiles }));
  const second = planPlaceholderRound(input({ localFiles: [...localFiles].reverse(), remoteFiles: [...remoteFiles].reverse() }));
  assert.deepEqual(first, second);
  assert.deepEqual(kinds(first), [
    'download R/1',
    'download dir/b.txt',
    'download r/10',
    'download r/2',
    'upload Z.txt',
    'upload a.txt',
    'upload dir/a.txt',
    'upload dir/sub/c.txt',
  ]);
});

test('download-side filters apply to relay paths only; the upload side is the engine-filtered local list', () => {
  const plan = planPlaceholderRound(input({
    acceptsRemote: (path) => !path.endsWith('.tmp'),
    localFiles: [localOf(relPath('keep.tmp'), 5000, 'x')],
    remoteFiles: [remoteOf(relPath('skip.tmp')), remoteOf(relPath('take.txt')), remoteOf(relPath('keep.tmp'), { record: rec({ timestamp: 9000 }) })],
  }));
  // keep.tmp is newer on the relay but filtered out for download, so the local copy is not replaced;
  // being older than the relay record, it is not uploaded either.
  assert.deepEqual(kinds(plan), ['download take.txt']);
});

test('r- files are visible to the download phase but never uploaded', () => {
  const plan = planPlaceholderRound(input({ rules: { [A]: { read: false } }, localFiles: [localOf(A, 900, 'bbbb'), localOf(B, 900, 'bbbb')], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(kinds(plan), ['download a.txt', 'upload dir/b.txt']);
  assert.deepEqual(only(plan, 'download')[0]?.replaces, localOf(A, 900, 'bbbb'));
});

test('the planner does not mutate its input', () => {
  const base = input({ localFiles: [localOf(A, 900, 'bbbb')], remoteFiles: [remoteOf(A), remoteOf(B)] });
  const before = JSON.stringify([[...base.local], [...base.remote]]);
  planPlaceholderRound(base);
  assert.equal(JSON.stringify([[...base.local], [...base.remote]]), before);
});

// --- classification helpers ---

test('classifyRelay and classifyLocal name the states of the decision tables', () => {
  assert.equal(classifyRelay(undefined, 'me'), 'absent');
  assert.equal(classifyRelay(remoteOf(A, { locked: true, record: rec({ pusher: 'me' }) }), 'me'), 'locked');
  assert.equal(classifyRelay(remoteOf(A, { hasData: false, record: rec({ pusher: 'me' }) }), 'me'), 'pushed-by-me');
  assert.equal(classifyRelay(remoteOf(A, { hasData: false }), 'me'), 'record-only');
  assert.equal(classifyRelay(remoteOf(A, { record: undefined }), 'me'), 'data-without-record');
  assert.equal(classifyRelay(remoteOf(A, { hasData: false, record: undefined, recordProblem: 'x' }), 'me'), 'unreadable-record');
  const options = { useMtime: true, useChecksum: true };
  assert.equal(classifyLocal(undefined, rec(), options), 'absent');
  assert.equal(classifyLocal(localOf(A, 1), undefined, options), 'present');
  assert.equal(classifyLocal(localOf(A, 7, 'aaaa'), rec(), options), 'same');
  assert.equal(classifyLocal(localOf(A, 999, 'b'), rec(), options), 'older');
  assert.equal(classifyLocal(localOf(A, 1001, 'b'), rec(), options), 'newer');
  assert.equal(classifyLocal(localOf(A, 1000, 'b'), rec(), options), 'conflict');
  assert.equal(classifyLocal(localOf(A, 1000), rec(), options), 'undetermined');
});

// --- resend-missing: a puller that does not record itself (escale 0.7 with puller count ≥ 2) ---

/** Re-send bookkeeping as the engine gives it: `asked` counts per path, at most `max`, `pending` what was asked for. */
function resends(asked: Record<string, number> = {}, pending: Record<string, MetadataRecord> = {}, max = 3): ResendRequests {
  return { mayAsk: (path) => (asked[path] ?? 0) < max, pending: (path) => pending[path] };
}

test('pulledTooEarly: fewer distinct pullers than the count, this client not among them', () => {
  assert.equal(pulledTooEarly(2, rec(), 'me'), true);
  assert.equal(pulledTooEarly(2, rec({ pullers: ['bob'] }), 'me'), true);
  assert.equal(pulledTooEarly(2, rec({ pullers: ['bob', '', 'bob'] }), 'me'), true);
  assert.equal(pulledTooEarly(2, rec({ pullers: ['bob', 'carol'] }), 'me'), false);
  assert.equal(pulledTooEarly(3, rec({ pullers: ['bob', 'me'] }), 'me'), false);
  assert.equal(pulledTooEarly(1, rec(), 'me'), false);
  assert.equal(pulledTooEarly(undefined, rec(), 'me'), false);
});

test('resend-missing: with puller count 2, data gone without this client asks for a re-send when this client would download it', () => {
  const gone = remoteOf(A, { hasData: false });
  for (const [mode, local, expected] of [
    ['shared', undefined, ['request-resend a.txt']],
    ['download', undefined, ['request-resend a.txt']],
    ['conservative', undefined, ['request-resend a.txt']],
    ['shared', localOf(A, 900, 'bbbb'), ['request-resend a.txt']],
    ['download', localOf(A, 1000, 'bbbb'), ['request-resend a.txt']],
    // holds this version, or a newer one, or is protected: nothing to ask for
    ['shared', localOf(A, 1000, 'aaaa'), []],
    ['download', localOf(A, 1100, 'bbbb'), []],
    ['conservative', localOf(A, 900, 'bbbb'), []],
    ['upload', undefined, []],
  ] as const) {
    const plan = planPlaceholderRound(input({ mode, pullerCount: 2, resends: resends(), localFiles: local === undefined ? [] : [local], remoteFiles: [gone] }));
    assert.deepEqual(kinds(plan), expected, `${mode} ${JSON.stringify(local)}`);
  }
  const [request] = only(planPlaceholderRound(input({ pullerCount: 2, resends: resends(), remoteFiles: [gone] })), 'request-resend');
  assert.deepEqual(request?.record, gone.record);
});

test('resend-missing: never when the count was reached, this client pulled it, w- forbids writing, the bound is reached, or the count is 1', () => {
  const cases: Array<[Partial<PlanInput>, RemoteFile]> = [
    [{ pullerCount: 2 }, remoteOf(A, { hasData: false, record: rec({ pullers: ['bob', 'carol'] }) })],
    [{ pullerCount: 2 }, remoteOf(A, { hasData: false, record: rec({ pullers: ['me'] }) })],
    [{ pullerCount: 2, rules: { [A]: { write: false } } } as Partial<PlanInput>, remoteOf(A, { hasData: false })],
    [{ pullerCount: 2, resends: resends({ [A]: 3 }) }, remoteOf(A, { hasData: false })],
    [{ pullerCount: 1 }, remoteOf(A, { hasData: false })],
    [{ pullerCount: 2 }, remoteOf(A, { hasData: false, record: rec({ pusher: 'me' }) })],
    [{ pullerCount: 2 }, remoteOf(A, { hasData: false, locked: true })],
  ];
  for (const [options, remote] of cases) {
    const plan = planPlaceholderRound(input({ resends: resends(), ...options, remoteFiles: [remote] }));
    assert.deepEqual(kinds(plan), [], JSON.stringify(options));
  }
  // without re-send bookkeeping (dry-run of an old engine) nothing is asked either
  assert.deepEqual(kinds(planPlaceholderRound(input({ pullerCount: 2, remoteFiles: [remoteOf(A, { hasData: false })] }))), []);
});

test('resend-pending: an older local copy is not sent in place of the version asked for; a newer local edit is', () => {
  const asked = rec();
  // the placeholder was deleted: the relay shows nothing for the path
  const older = planPlaceholderRound(input({ pullerCount: 2, resends: resends({ [A]: 1 }, { [A]: asked }), localFiles: [localOf(A, 900, 'bbbb')] }));
  assert.deepEqual(kinds(older), []);
  assert.match(only(older, 'note')[0]?.message ?? '', /asked for a newer version/);
  const sameMtime = planPlaceholderRound(input({ pullerCount: 2, resends: resends({ [A]: 1 }, { [A]: asked }), localFiles: [localOf(A, 1000, 'bbbb')] }));
  assert.deepEqual(kinds(sameMtime), []);
  const newer = planPlaceholderRound(input({ pullerCount: 2, resends: resends({ [A]: 1 }, { [A]: asked }), localFiles: [localOf(A, 1100, 'bbbb')] }));
  assert.deepEqual(kinds(newer), ['upload a.txt']);
  // the old record still listed (the plan's relay view is a round old): same hold
  const stale = planPlaceholderRound(input({ phase: 'upload', pullerCount: 2, resends: resends({ [A]: 1 }, { [A]: asked }), localFiles: [localOf(A, 1000, 'bbbb')], remoteFiles: [remoteOf(A, { hasData: false })] }));
  assert.deepEqual(kinds(stale), []);
  // another version on the relay: the request no longer applies
  const replaced = planPlaceholderRound(input({ phase: 'upload', pullerCount: 2, resends: resends({ [A]: 1 }, { [A]: asked }), localFiles: [localOf(A, 900, 'bbbb')] , remoteFiles: [remoteOf(A, { hasData: false, record: rec({ timestamp: 800, checksum: 'cccc' }) })] }));
  assert.deepEqual(kinds(replaced), ['upload a.txt']);
});

test('a both-phase plan does not upload a path whose re-send it asks for', () => {
  const plan = planPlaceholderRound(input({ pullerCount: 2, resends: resends(), localFiles: [localOf(A, 1000, 'bbbb')], remoteFiles: [remoteOf(A, { hasData: false })] }));
  assert.deepEqual(kinds(plan), ['request-resend a.txt']);
});

// --- the base: what changed since this client last agreed with the relay ---

/** The base of A: alice's version at t = 1000 s, content `aaaa`, as it lay in this folder then. */
const AGREED: BaseVersion = { checksum: 'aaaa', size: 10, mtimeMs: 1_000_000, ctimeMs: 1_000_000.5, ino: '42', pusher: 'alice', timestamp: 1000 };
const withBase = (overrides: Parameters<typeof input>[0]): PlanInput => input({ base: new Map([[A, AGREED]]), ...overrides });
const HOURS_2 = 7200;

test('an edit made on a clock 2 h behind the pusher of the base is sent (without a base it was taken for older)', () => {
  const edited = localOf(A, 1000 - HOURS_2, 'bbbb');
  const remote = remoteOf(A, { hasData: false });
  assert.deepEqual(kinds(planPlaceholderRound(input({ localFiles: [edited], remoteFiles: [remote] }))), [], 'last-writer-wins loses the edit');
  const plan = planPlaceholderRound(withBase({ localFiles: [edited], remoteFiles: [remote] }));
  assert.deepEqual(kinds(plan), ['upload a.txt']);
  assert.equal(only(plan, 'upload')[0]?.replacesData, undefined, 'no data to replace on the relay');
});

test('a relay version pushed from a clock 2 h behind replaces an unchanged local file', () => {
  const unchanged: LocalFile = { path: A, size: 10, mtimeMs: 1_000_000, ctimeMs: 1_000_000.5, ino: '42' };
  const newer = remoteOf(A, { record: rec({ pusher: 'bob', timestamp: 1000 - HOURS_2, checksum: 'bbbb' }) });
  assert.deepEqual(kinds(planPlaceholderRound(input({ localFiles: [{ ...unchanged, checksum: 'aaaa' }], remoteFiles: [newer] }))), ['upload a.txt'], 'last-writer-wins sends the old version back');
  assert.deepEqual(kinds(planPlaceholderRound(withBase({ localFiles: [unchanged], remoteFiles: [newer] }))), ['download a.txt']);
});

test('a touched file (same content, new mtime) counts as unchanged against its base', () => {
  const touched = localOf(A, 5000, 'aaaa');
  const newer = remoteOf(A, { record: rec({ pusher: 'bob', timestamp: 10, checksum: 'bbbb' }) });
  assert.deepEqual(kinds(planPlaceholderRound(withBase({ localFiles: [touched], remoteFiles: [newer] }))), ['download a.txt']);
});

test('without checksums, size and mtime tell a changed local file; pusher and timestamp a changed record', () => {
  const options = { useChecksum: false };
  const sameStat: LocalFile = { path: A, size: 10, mtimeMs: 1_000_000 };
  const moved = remoteOf(A, { record: rec({ checksum: undefined, timestamp: 999 }) });
  assert.deepEqual(kinds(planPlaceholderRound(withBase({ ...options, localFiles: [sameStat], remoteFiles: [moved] }))), ['download a.txt']);
  const edited: LocalFile = { path: A, size: 10, mtimeMs: 1_000_000 - 1 };
  const same = remoteOf(A, { record: rec({ checksum: undefined }) });
  assert.deepEqual(kinds(planPlaceholderRound(withBase({ ...options, localFiles: [edited], remoteFiles: [same] }))), ['upload a.txt']);
});

test('both sides changed since the base: last-writer-wins by mtime, for now (issue 16 makes it a conflict copy)', () => {
  const remote = remoteOf(A, { record: rec({ pusher: 'bob', timestamp: 2000, checksum: 'bbbb' }) });
  assert.deepEqual(kinds(planPlaceholderRound(withBase({ localFiles: [localOf(A, 1500, 'cccc')], remoteFiles: [remote] }))), ['download a.txt']);
  assert.deepEqual(kinds(planPlaceholderRound(withBase({ localFiles: [localOf(A, 2500, 'cccc')], remoteFiles: [remote] }))), ['upload a.txt']);
});

test('identical content records the base, once: not when the base already agrees, not while the resource is locked', () => {
  const same = localOf(A, 3000, 'aaaa');
  const plan = planPlaceholderRound(input({ localFiles: [same], remoteFiles: [remoteOf(A)] }));
  assert.deepEqual(only(plan, 'record-base'), [{ kind: 'record-base', path: A, reason: 'identical', local: same, record: rec() }]);
  assert.deepEqual(only(planPlaceholderRound(withBase({ localFiles: [same], remoteFiles: [remoteOf(A)] })), 'record-base'), []);
  assert.deepEqual(only(planPlaceholderRound(input({ localFiles: [same], remoteFiles: [remoteOf(A, { locked: true })] })), 'record-base'), []);
  const own = remoteOf(A, { hasData: false, record: rec({ pusher: 'me' }) });
  assert.equal(only(planPlaceholderRound(input({ localFiles: [same], remoteFiles: [own] })), 'record-base').length, 1, 'an own push found identical (a crash before the base was written)');
});

test('an upload over relay data says so, for the push to remove the old data before the new record', () => {
  const plan = planPlaceholderRound(withBase({ localFiles: [localOf(A, 10, 'bbbb')], remoteFiles: [remoteOf(A)] }));
  assert.equal(only(plan, 'upload')[0]?.replacesData, true);
});
