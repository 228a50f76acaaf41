import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relPath } from '../core/relpath.js';
import type { RelPath } from '../core/relpath.js';
import type { AccessRule, Action, LocalFile, MetadataRecord, RemoteFile, SyncMode } from './model.js';
import { planPlaceholderRound } from './planner.js';

// The placeholder decision table (cli-and-config §5.5 with the TypeScript fixes), one test per cell:
// mode × local state × relay state × (access rule, puller count). Every cell runs a full round
// (`phase: 'both'`) for one path, with timestamps and checksums on; `puller count` is unset in the
// first three columns and 2 in the last two (§5.7: a puller with identical content registers itself
// without downloading). Puller count 1, filters and the other options have their own scenario tests
// in planner.test.ts.
//
// Fixtures: the relay record is pushed by `alice` at t = 1000 s with checksum `aaaa`, no pullers.
//   local same content  = mtime 1000 s, checksum aaaa     local older = mtime  900 s, checksum bbbb
//   local newer         = mtime 1100 s, checksum bbbb     local different content, same mtime = 1000 s, bbbb
//   relay pushed-by-me  = data + a record whose pusher is this client (`me`), same timestamp/checksum
//   relay locked        = data + record + a lock file
//   relay pulled-by-me  = data + record whose pullers already name this client (`me`)
//
// Expected outcome tokens (actions of the plan in order, joined by ' + '; debug/info notes left out):
//   skip         no action               down:new / down:update   download (D6 / D5)
//   up:new       upload (U2)             up:update                upload (U5)
//   up:refresh   upload to refresh the metadata (U4)
//   protect      set-access w- (conservative protection of a pre-existing local file, §6.3)
//   warn         a warning note (D3 / D3-no-local: relay data without a readable record is left in place, never
//                downloaded unverified; or missing metadata)
//   register     record this client as puller without downloading (identical content, puller count ≥ 2)

type LocalCase = 'absent' | 'same' | 'older' | 'newer' | 'different-same-mtime';
type RelayCase = 'absent' | 'data+record' | 'record-only' | 'data-without-record' | 'locked' | 'pushed-by-me' | 'pulled-by-me';
type Row = readonly [
  mode: SyncMode,
  local: LocalCase,
  relay: RelayCase,
  noRule: string,
  readOnly: string,
  writeProtected: string,
  twoPullers: string,
  twoPullersWriteProtected: string,
];

// prettier-ignore
const TABLE: readonly Row[] = [
//  mode            local                   relay                  no access rule          r-                 w-            count 2                 count 2, w-
  // relay absent
  ['upload',       'absent',               'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['upload',       'older',                'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['upload',       'newer',                'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['upload',       'different-same-mtime', 'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['download',     'absent',               'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'same',                 'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'older',                'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'newer',                'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'absent',               'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'same',                 'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['shared',       'older',                'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['shared',       'newer',                'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['shared',       'different-same-mtime', 'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['conservative', 'absent',               'absent',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'same',                 'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['conservative', 'older',                'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['conservative', 'newer',                'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  ['conservative', 'different-same-mtime', 'absent',              'up:new',               'skip',            'up:new',     'up:new',               'up:new'],
  // relay data+record
  ['upload',       'absent',               'data+record',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'data+record',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'older',                'data+record',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'data+record',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'data+record',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'data+record',         'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['download',     'same',                 'data+record',         'skip',                 'skip',            'skip',       'register',             'register'],
  ['download',     'older',                'data+record',         'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['download',     'newer',                'data+record',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'data+record',         'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'absent',               'data+record',         'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['shared',       'same',                 'data+record',         'skip',                 'skip',            'skip',       'register',             'register'],
  ['shared',       'older',                'data+record',         'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'newer',                'data+record',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'data+record',         'down:update',          'down:update',     'up:update',  'down:update',          'up:update'],
  ['conservative', 'absent',               'data+record',         'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['conservative', 'same',                 'data+record',         'protect',              'protect',         'skip',       'register',             'register'],
  ['conservative', 'older',                'data+record',         'protect',              'protect',         'skip',       'protect',              'skip'],
  ['conservative', 'newer',                'data+record',         'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  ['conservative', 'different-same-mtime', 'data+record',         'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  // relay record-only
  ['upload',       'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'older',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'same',                 'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'older',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'newer',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'same',                 'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'older',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'newer',                'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'same',                 'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'older',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'newer',                'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'different-same-mtime', 'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  // relay data-without-record
  ['upload',       'absent',               'data-without-record', 'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'data-without-record', 'up:refresh',           'skip',            'up:refresh', 'up:refresh',           'up:refresh'],
  ['upload',       'older',                'data-without-record', 'up:refresh',           'skip',            'up:refresh', 'up:refresh',           'up:refresh'],
  ['upload',       'newer',                'data-without-record', 'up:refresh',           'skip',            'up:refresh', 'up:refresh',           'up:refresh'],
  ['upload',       'different-same-mtime', 'data-without-record', 'up:refresh',           'skip',            'up:refresh', 'up:refresh',           'up:refresh'],
  ['download',     'absent',               'data-without-record', 'warn',                 'warn',            'skip',       'warn',                 'skip'],
  ['download',     'same',                 'data-without-record', 'warn',                 'warn',            'skip',       'warn',                 'skip'],
  ['download',     'older',                'data-without-record', 'warn',                 'warn',            'skip',       'warn',                 'skip'],
  ['download',     'newer',                'data-without-record', 'warn',                 'warn',            'skip',       'warn',                 'skip'],
  ['download',     'different-same-mtime', 'data-without-record', 'warn',                 'warn',            'skip',       'warn',                 'skip'],
  ['shared',       'absent',               'data-without-record', 'warn',                 'warn',            'skip',       'warn',                 'skip'],
  ['shared',       'same',                 'data-without-record', 'warn + up:refresh',    'warn',            'up:refresh', 'warn + up:refresh',    'up:refresh'],
  ['shared',       'older',                'data-without-record', 'warn + up:refresh',    'warn',            'up:refresh', 'warn + up:refresh',    'up:refresh'],
  ['shared',       'newer',                'data-without-record', 'warn + up:refresh',    'warn',            'up:refresh', 'warn + up:refresh',    'up:refresh'],
  ['shared',       'different-same-mtime', 'data-without-record', 'warn + up:refresh',    'warn',            'up:refresh', 'warn + up:refresh',    'up:refresh'],
  ['conservative', 'absent',               'data-without-record', 'warn',                 'warn',            'skip',       'warn',                 'skip'],
  ['conservative', 'same',                 'data-without-record', 'protect + up:refresh', 'protect',         'up:refresh', 'protect + up:refresh', 'up:refresh'],
  ['conservative', 'older',                'data-without-record', 'protect + up:refresh', 'protect',         'up:refresh', 'protect + up:refresh', 'up:refresh'],
  ['conservative', 'newer',                'data-without-record', 'protect + up:refresh', 'protect',         'up:refresh', 'protect + up:refresh', 'up:refresh'],
  ['conservative', 'different-same-mtime', 'data-without-record', 'protect + up:refresh', 'protect',         'up:refresh', 'protect + up:refresh', 'up:refresh'],
  // relay locked
  ['upload',       'absent',               'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'older',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'different-same-mtime', 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'absent',               'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'same',                 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'older',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'newer',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'absent',               'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'same',                 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'older',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'newer',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'different-same-mtime', 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'absent',               'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'same',                 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'older',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'newer',                'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'different-same-mtime', 'locked',              'skip',                 'skip',            'skip',       'skip',                 'skip'],
  // relay pushed-by-me
  ['upload',       'absent',               'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'same',                 'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'newer',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'absent',               'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'same',                 'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'newer',                'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'absent',               'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'same',                 'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'newer',                'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'different-same-mtime', 'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  // relay pulled-by-me (data + record whose pullers already name this client)
  ['upload',       'absent',               'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'older',                'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'pulled-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'pulled-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'pulled-by-me',        'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['download',     'same',                 'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'older',                'pulled-by-me',        'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['download',     'newer',                'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'pulled-by-me',        'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'absent',               'pulled-by-me',        'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['shared',       'same',                 'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'older',                'pulled-by-me',        'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'newer',                'pulled-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'pulled-by-me',        'down:update',          'down:update',     'up:update',  'down:update',          'up:update'],
  ['conservative', 'absent',               'pulled-by-me',        'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['conservative', 'same',                 'pulled-by-me',        'protect',              'protect',         'skip',       'protect',              'skip'],
  ['conservative', 'older',                'pulled-by-me',        'protect',              'protect',         'skip',       'protect',              'skip'],
  ['conservative', 'newer',                'pulled-by-me',        'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  ['conservative', 'different-same-mtime', 'pulled-by-me',        'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
];

const MODES: readonly SyncMode[] = ['upload', 'download', 'shared', 'conservative'];
const LOCALS: readonly LocalCase[] = ['absent', 'same', 'older', 'newer', 'different-same-mtime'];
const RELAYS: readonly RelayCase[] = ['absent', 'data+record', 'record-only', 'data-without-record', 'locked', 'pushed-by-me', 'pulled-by-me'];
const COLUMNS: readonly { label: string; rule: AccessRule; pullerCount?: number; column: 3 | 4 | 5 | 6 | 7 }[] = [
  { label: 'no access rule', rule: {}, column: 3 },
  { label: 'r-', rule: { read: false }, column: 4 },
  { label: 'w-', rule: { write: false }, column: 5 },
  { label: 'puller count 2', rule: {}, pullerCount: 2, column: 6 },
  { label: 'puller count 2, w-', rule: { write: false }, pullerCount: 2, column: 7 },
];

const LOCAL_LABEL: Record<LocalCase, string> = {
  absent: 'local absent',
  same: 'local same content',
  older: 'local older',
  newer: 'local newer',
  'different-same-mtime': 'local different content, same mtime',
};

const TOKEN_LABEL: Record<string, string> = {
  skip: 'skip',
  'down:new': 'download (new)',
  'down:update': 'download (update)',
  'up:new': 'upload (new)',
  'up:update': 'upload (update)',
  'up:refresh': 'upload (refresh metadata)',
  protect: 'protect (w-)',
  warn: 'warning',
  register: 'register as puller',
};

const PATH = relPath('docs/report.txt');
const CLIENT = 'me';

function record(pusher: string, pullers: string[] = []): MetadataRecord {
  return { version: '1.0', pusher, timestamp: 1000, checksum: 'aaaa', pullers };
}

function localFile(state: LocalCase): LocalFile | undefined {
  const of = (mtimeSec: number, checksum: string): LocalFile => ({ path: PATH, size: 10, mtimeMs: mtimeSec * 1000 + 250, checksum });
  switch (state) {
    case 'absent':
      return undefined;
    case 'same':
      return of(1000, 'aaaa');
    case 'older':
      return of(900, 'bbbb');
    case 'newer':
      return of(1100, 'bbbb');
    case 'different-same-mtime':
      return of(1000, 'bbbb');
  }
}

function remoteFile(state: RelayCase): RemoteFile | undefined {
  switch (state) {
    case 'absent':
      return undefined;
    case 'data+record':
      return { path: PATH, hasData: true, locked: false, record: record('alice'), size: 10 };
    case 'record-only':
      return { path: PATH, hasData: false, locked: false, record: record('alice') };
    case 'data-without-record':
      return { path: PATH, hasData: true, locked: false, size: 10 };
    case 'locked':
      return { path: PATH, hasData: true, locked: true, record: record('alice'), size: 10 };
    case 'pushed-by-me':
      return { path: PATH, hasData: true, locked: false, record: record(CLIENT), size: 10 };
    case 'pulled-by-me':
      return { path: PATH, hasData: true, locked: false, record: record('alice', ['bob', CLIENT]), size: 10 };
  }
}

/** The plan in the table's token vocabulary. */
function summarize(actions: readonly Action[]): string {
  const tokens: string[] = [];
  for (const action of actions) {
    assert.equal(action.path, PATH, 'every action is about the one path of the cell');
    switch (action.kind) {
      case 'download':
        tokens.push(`down:${action.reason}`);
        break;
      case 'upload':
        tokens.push(action.reason === 'refresh-metadata' ? 'up:refresh' : `up:${action.reason}`);
        break;
      case 'consume':
        tokens.push(`consume:${action.reason}`);
        break;
      case 'register-puller':
        assert.equal(action.record.checksum, 'aaaa', 'registers for the version it holds');
        tokens.push('register');
        break;
      case 'set-access':
        tokens.push(action.modifiers === 'w-' ? 'protect' : `set-access:${action.modifiers}`);
        break;
      case 'note':
        if (action.level === 'warning') tokens.push('warn');
        break;
    }
  }
  return tokens.length === 0 ? 'skip' : tokens.join(' + ');
}

function describe(expected: string): string {
  return expected
    .split(' + ')
    .map((token) => TOKEN_LABEL[token] ?? token)
    .join(' + ');
}

test('the decision table lists every mode × local × relay combination exactly once', () => {
  const keys = TABLE.map(([mode, local, relay]) => `${mode}|${local}|${relay}`);
  assert.equal(new Set(keys).size, keys.length, 'no duplicate rows');
  assert.equal(keys.length, MODES.length * LOCALS.length * RELAYS.length);
  for (const mode of MODES) for (const local of LOCALS) for (const relay of RELAYS) assert.ok(keys.includes(`${mode}|${local}|${relay}`), `${mode}|${local}|${relay}`);
});

for (const row of TABLE) {
  const [mode, localCase, relayCase] = row;
  for (const access of COLUMNS) {
    const expected = row[access.column];
    test(`${mode} | ${LOCAL_LABEL[localCase]} | relay ${relayCase} | ${access.label} → ${describe(expected)}`, () => {
      const local = new Map<RelPath, LocalFile>();
      const file = localFile(localCase);
      if (file) local.set(PATH, file);
      const remote = new Map<RelPath, RemoteFile>();
      const entry = remoteFile(relayCase);
      if (entry) remote.set(PATH, entry);
      const plan = planPlaceholderRound({
        phase: 'both',
        mode,
        client: CLIENT,
        ...(access.pullerCount === undefined ? {} : { pullerCount: access.pullerCount }),
        useMtime: true,
        useChecksum: true,
        local,
        remote,
        access: () => access.rule,
        acceptsRemote: () => true,
      });
      assert.equal(summarize(plan), expected);
    });
  }
}
