import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relPath } from '../core/relpath.js';
import type { AccessRule, Action, LocalFile, SyncMode } from './model.js';
import type { MetadataRecord, RemoteFile } from '../relay/protocol/records.js';
import { planPlaceholderRound } from './planner.js';
import type { BaseVersion } from '../local/base-store.js';

// The placeholder decision table (sync-rules.md R4.1, R4.2), one test per cell:
// mode × local state × relay state × (access rule, puller count). Every cell runs a full round
// (`phase: 'both'`) for one path, with timestamps and checksums on; `puller count` is unset in the
// first three columns and 2 in the last two (sync-rules.md R6: a puller with identical content registers itself
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
//   protect      set-access w- (conservative protection of a pre-existing local file, sync-rules.md R7.2)
//   warn         a warning note (D3 / D3-no-local: relay data without a readable record is left in place, never
//                downloaded unverified; or missing metadata)
//   register     record this client as puller without downloading (identical content, puller count ≥ 2)
//   consume      remove the relay copy of content this client holds (puller count 1: not in these columns)
//   agree        record the base: local and relay found identical (no transfer; see BASE_TABLE below)
//
// TABLE is the decision table without a base (a first round, or a path never agreed on): last-writer-
// wins by mtime. BASE_TABLE adds the base dimension (what changed since this client last agreed with
// the relay), with mtimes chosen against the outcome, to show that they no longer decide.

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
  ['upload',       'same',                 'data+record',         'agree',                'agree',           'agree',      'agree',                'agree'],
  ['upload',       'older',                'data+record',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'data+record',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'data+record',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'data+record',         'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['download',     'same',                 'data+record',         'agree',                'agree',           'agree',      'register',             'register'],
  ['download',     'older',                'data+record',         'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['download',     'newer',                'data+record',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'data+record',         'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'absent',               'data+record',         'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['shared',       'same',                 'data+record',         'agree',                'agree',           'agree',      'register',             'register'],
  ['shared',       'older',                'data+record',         'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'newer',                'data+record',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'data+record',         'down:update',          'down:update',     'up:update',  'down:update',          'up:update'],
  ['conservative', 'absent',               'data+record',         'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['conservative', 'same',                 'data+record',         'protect + agree',      'protect',         'agree',      'register',             'register'],
  ['conservative', 'older',                'data+record',         'protect',              'protect',         'skip',       'protect',              'skip'],
  ['conservative', 'newer',                'data+record',         'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  ['conservative', 'different-same-mtime', 'data+record',         'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  // relay record-only
  ['upload',       'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'record-only',         'agree',                'agree',           'agree',      'agree',                'agree'],
  ['upload',       'older',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'same',                 'record-only',         'agree',                'agree',           'agree',      'agree',                'agree'],
  ['download',     'older',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'newer',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'same',                 'record-only',         'agree',                'agree',           'agree',      'agree',                'agree'],
  ['shared',       'older',                'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'newer',                'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'record-only',         'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'absent',               'record-only',         'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'same',                 'record-only',         'agree',                'agree',           'agree',      'agree',                'agree'],
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
  ['upload',       'same',                 'pushed-by-me',        'agree',                'agree',           'agree',      'agree',                'agree'],
  ['upload',       'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'same',                 'pushed-by-me',        'agree',                'agree',           'agree',      'agree',                'agree'],
  ['download',     'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'newer',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'absent',               'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'same',                 'pushed-by-me',        'agree',                'agree',           'agree',      'agree',                'agree'],
  ['shared',       'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'newer',                'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'absent',               'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'same',                 'pushed-by-me',        'agree',                'agree',           'agree',      'agree',                'agree'],
  ['conservative', 'older',                'pushed-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'newer',                'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'different-same-mtime', 'pushed-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  // relay pulled-by-me (data + record whose pullers already name this client)
  ['upload',       'absent',               'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'same',                 'pulled-by-me',        'agree',                'agree',           'agree',      'agree',                'agree'],
  ['upload',       'older',                'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'newer',                'pulled-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'different-same-mtime', 'pulled-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'absent',               'pulled-by-me',        'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['download',     'same',                 'pulled-by-me',        'agree',                'agree',           'agree',      'agree',                'agree'],
  ['download',     'older',                'pulled-by-me',        'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['download',     'newer',                'pulled-by-me',        'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'different-same-mtime', 'pulled-by-me',        'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'absent',               'pulled-by-me',        'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['shared',       'same',                 'pulled-by-me',        'agree',                'agree',           'agree',      'agree',                'agree'],
  ['shared',       'older',                'pulled-by-me',        'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'newer',                'pulled-by-me',        'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'different-same-mtime', 'pulled-by-me',        'down:update',          'down:update',     'up:update',  'down:update',          'up:update'],
  ['conservative', 'absent',               'pulled-by-me',        'down:new',             'down:new',        'skip',       'down:new',             'skip'],
  ['conservative', 'same',                 'pulled-by-me',        'protect + agree',      'protect',         'agree',      'protect + agree',      'agree'],
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
  agree: 'record the base',
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
        assert.equal(action.record.checksum, action.local.checksum, 'registers for the version it holds');
        tokens.push('register');
        break;
      case 'record-base':
        assert.equal(action.record.checksum, action.local.checksum, 'agrees on identical content only');
        tokens.push('agree');
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

/** Plans one full round (`phase: 'both'`, timestamps and checksums on) for the one path of a cell, in the table's tokens. */
function planCell(mode: SyncMode, access: (typeof COLUMNS)[number], local: LocalFile | undefined, remote: RemoteFile | undefined, base: BaseVersion | undefined): string {
  const plan = planPlaceholderRound({
    phase: 'both',
    mode,
    client: CLIENT,
    ...(access.pullerCount === undefined ? {} : { pullerCount: access.pullerCount }),
    useMtime: true,
    useChecksum: true,
    local: new Map(local === undefined ? [] : [[PATH, local]]),
    remote: new Map(remote === undefined ? [] : [[PATH, remote]]),
    access: () => access.rule,
    acceptsRemote: () => true,
    base: new Map(base === undefined ? [] : [[PATH, base]]),
  });
  return summarize(plan);
}

for (const row of TABLE) {
  const [mode, localCase, relayCase] = row;
  for (const access of COLUMNS) {
    const expected = row[access.column];
    test(`no base | ${mode} | ${LOCAL_LABEL[localCase]} | relay ${relayCase} | ${access.label} → ${describe(expected)}`, () => {
      assert.equal(planCell(mode, access, localFile(localCase), remoteFile(relayCase), undefined), expected);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The base dimension. The base is `alice`'s version at t = 1000 s, content `aaaa`, as it lay in this
// folder then (mtime 1000 s, ctime and inode known). Every cell has a base; the columns are those of
// TABLE. The mtimes are chosen so that last-writer-wins would decide the other way wherever only one
// side changed:
//   local unchanged        = the base's identity exactly
//   local touched          = content aaaa, mtime 1200 s (same content, new identity: unchanged)
//   local edited, behind   = content cccc, mtime  500 s (an edit on a clock behind: older than the relay)
//   local edited, ahead    = content cccc, mtime 2000 s
//   relay unchanged        = the base's record (alice, 1000 s, aaaa)
//   relay changed, behind  = bob's record at 900 s, content dddd (pushed from a clock behind)
// Relay states: data+record, record-only (the data was consumed), pushed-by-me unchanged (the base is
// this client's own push), pushed-by-me changed-ahead (this client's own push at 3000 s, content eeee,
// whose agreement a crash lost: the local file differs from it, so it changed after that push and
// is sent whatever the mtimes and the base say: rule own-push-differs; without a base, TABLE's
// `older | pushed-by-me` cells keep 0.7's rule: a client set up again under its old name with a
// folder restored from a backup does not send the backup over newer versions).
// Base relations: unchanged/touched × relay unchanged = in sync (base-same); edited × relay unchanged =
// local changed (base-local: upload); unchanged/touched × relay changed = relay changed (base-relay:
// download); edited × relay changed = both changed: last-writer-wins by mtime (D5/U5/U6), which issue
// 16 turns into conflict copies.

type BaseLocalCase = 'unchanged' | 'touched' | 'edited-behind' | 'edited-ahead';
type BaseRelayCase = 'data+record unchanged' | 'data+record changed-behind' | 'record-only unchanged' | 'record-only changed-behind' | 'pushed-by-me unchanged' | 'pushed-by-me changed-ahead';
type BaseRow = readonly [mode: SyncMode, local: BaseLocalCase, relay: BaseRelayCase, noRule: string, readOnly: string, writeProtected: string, twoPullers: string, twoPullersWriteProtected: string];

// prettier-ignore
const BASE_TABLE: readonly BaseRow[] = [
//  mode            local            relay                          no access rule          r-                 w-            count 2                 count 2, w-
  // relay data+record unchanged
  ['upload',       'unchanged',     'data+record unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'touched',       'data+record unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'edited-behind', 'data+record unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'edited-ahead',  'data+record unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'unchanged',     'data+record unchanged',       'skip',                 'skip',            'skip',       'register',             'register'],
  ['download',     'touched',       'data+record unchanged',       'skip',                 'skip',            'skip',       'register',             'register'],
  ['download',     'edited-behind', 'data+record unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-ahead',  'data+record unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'unchanged',     'data+record unchanged',       'skip',                 'skip',            'skip',       'register',             'register'],
  ['shared',       'touched',       'data+record unchanged',       'skip',                 'skip',            'skip',       'register',             'register'],
  ['shared',       'edited-behind', 'data+record unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'edited-ahead',  'data+record unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'unchanged',     'data+record unchanged',       'protect',              'protect',         'skip',       'register',             'register'],
  ['conservative', 'touched',       'data+record unchanged',       'protect',              'protect',         'skip',       'register',             'register'],
  ['conservative', 'edited-behind', 'data+record unchanged',       'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  ['conservative', 'edited-ahead',  'data+record unchanged',       'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  // relay data+record changed-behind
  ['upload',       'unchanged',     'data+record changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'touched',       'data+record changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'edited-behind', 'data+record changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'edited-ahead',  'data+record changed-behind',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'unchanged',     'data+record changed-behind',  'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['download',     'touched',       'data+record changed-behind',  'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['download',     'edited-behind', 'data+record changed-behind',  'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['download',     'edited-ahead',  'data+record changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'unchanged',     'data+record changed-behind',  'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'touched',       'data+record changed-behind',  'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'edited-behind', 'data+record changed-behind',  'down:update',          'down:update',     'skip',       'down:update',          'skip'],
  ['shared',       'edited-ahead',  'data+record changed-behind',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'unchanged',     'data+record changed-behind',  'protect',              'protect',         'skip',       'protect',              'skip'],
  ['conservative', 'touched',       'data+record changed-behind',  'protect',              'protect',         'skip',       'protect',              'skip'],
  ['conservative', 'edited-behind', 'data+record changed-behind',  'protect',              'protect',         'skip',       'protect',              'skip'],
  ['conservative', 'edited-ahead',  'data+record changed-behind',  'protect + up:update',  'protect',         'up:update',  'protect + up:update',  'up:update'],
  // relay record-only unchanged
  ['upload',       'unchanged',     'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'touched',       'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'edited-behind', 'record-only unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'edited-ahead',  'record-only unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'unchanged',     'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'touched',       'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-behind', 'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-ahead',  'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'unchanged',     'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'touched',       'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'edited-behind', 'record-only unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'edited-ahead',  'record-only unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'unchanged',     'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'touched',       'record-only unchanged',       'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'edited-behind', 'record-only unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'edited-ahead',  'record-only unchanged',       'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  // relay record-only changed-behind
  ['upload',       'unchanged',     'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'touched',       'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'edited-behind', 'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'edited-ahead',  'record-only changed-behind',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'unchanged',     'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'touched',       'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-behind', 'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-ahead',  'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'unchanged',     'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'touched',       'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'edited-behind', 'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'edited-ahead',  'record-only changed-behind',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'unchanged',     'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'touched',       'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'edited-behind', 'record-only changed-behind',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'edited-ahead',  'record-only changed-behind',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  // relay pushed-by-me unchanged
  ['upload',       'unchanged',     'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'touched',       'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['upload',       'edited-behind', 'pushed-by-me unchanged',      'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'edited-ahead',  'pushed-by-me unchanged',      'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'unchanged',     'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'touched',       'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-behind', 'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-ahead',  'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'unchanged',     'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'touched',       'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'edited-behind', 'pushed-by-me unchanged',      'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'edited-ahead',  'pushed-by-me unchanged',      'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'unchanged',     'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'touched',       'pushed-by-me unchanged',      'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['conservative', 'edited-behind', 'pushed-by-me unchanged',      'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'edited-ahead',  'pushed-by-me unchanged',      'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  // relay pushed-by-me changed-ahead: this client's own later push, its agreement lost (a crash); the local file differs from it
  ['upload',       'unchanged',     'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'touched',       'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'edited-behind', 'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['upload',       'edited-ahead',  'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['download',     'unchanged',     'pushed-by-me changed-ahead',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'touched',       'pushed-by-me changed-ahead',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-behind', 'pushed-by-me changed-ahead',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['download',     'edited-ahead',  'pushed-by-me changed-ahead',  'skip',                 'skip',            'skip',       'skip',                 'skip'],
  ['shared',       'unchanged',     'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'touched',       'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'edited-behind', 'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['shared',       'edited-ahead',  'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'unchanged',     'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'touched',       'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'edited-behind', 'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
  ['conservative', 'edited-ahead',  'pushed-by-me changed-ahead',  'up:update',            'skip',            'up:update',  'up:update',            'up:update'],
];

const BASE_LOCALS: readonly BaseLocalCase[] = ['unchanged', 'touched', 'edited-behind', 'edited-ahead'];
const BASE_RELAYS: readonly BaseRelayCase[] = ['data+record unchanged', 'data+record changed-behind', 'record-only unchanged', 'record-only changed-behind', 'pushed-by-me unchanged', 'pushed-by-me changed-ahead'];

const AGREED: BaseVersion = { checksum: 'aaaa', size: 10, mtimeMs: 1_000_000, ctimeMs: 1_000_000.5, ino: '42', pusher: 'alice', timestamp: 1000 };

function baseLocal(state: BaseLocalCase): LocalFile {
  switch (state) {
    case 'unchanged':
      return { path: PATH, size: 10, mtimeMs: 1_000_000, ctimeMs: 1_000_000.5, ino: '42', checksum: 'aaaa' };
    case 'touched':
      return { path: PATH, size: 10, mtimeMs: 1_200_000, ctimeMs: 1_200_000.5, ino: '42', checksum: 'aaaa' };
    case 'edited-behind':
      return { path: PATH, size: 10, mtimeMs: 500_000, ctimeMs: 1_300_000.5, ino: '42', checksum: 'cccc' };
    case 'edited-ahead':
      return { path: PATH, size: 10, mtimeMs: 2_000_000, ctimeMs: 2_000_000.5, ino: '42', checksum: 'cccc' };
  }
}

function baseRemote(state: BaseRelayCase): RemoteFile {
  const changed = { version: '1.0', pusher: 'bob', timestamp: 900, checksum: 'dddd', pullers: [] };
  switch (state) {
    case 'data+record unchanged':
      return { path: PATH, hasData: true, locked: false, record: record('alice'), size: 10 };
    case 'data+record changed-behind':
      return { path: PATH, hasData: true, locked: false, record: changed, size: 10 };
    case 'record-only unchanged':
      return { path: PATH, hasData: false, locked: false, record: record('alice', [CLIENT]) };
    case 'record-only changed-behind':
      return { path: PATH, hasData: false, locked: false, record: { ...changed, pullers: ['carol'] } };
    case 'pushed-by-me unchanged':
      return { path: PATH, hasData: true, locked: false, record: record(CLIENT), size: 10 };
    case 'pushed-by-me changed-ahead':
      return { path: PATH, hasData: true, locked: false, record: { version: '1.0', pusher: CLIENT, timestamp: 3000, checksum: 'eeee', pullers: [] }, size: 10 };
  }
}

test('the base table lists every mode × local × relay combination exactly once', () => {
  const keys = BASE_TABLE.map(([mode, local, relay]) => `${mode}|${local}|${relay}`);
  assert.equal(new Set(keys).size, keys.length, 'no duplicate rows');
  assert.equal(keys.length, MODES.length * BASE_LOCALS.length * BASE_RELAYS.length);
});

for (const row of BASE_TABLE) {
  const [mode, localCase, relayCase] = row;
  for (const access of COLUMNS) {
    const expected = row[access.column];
    test(`base | ${mode} | local ${localCase} | relay ${relayCase} | ${access.label} → ${describe(expected)}`, () => {
      const base = relayCase.startsWith('pushed-by-me') ? { ...AGREED, pusher: CLIENT } : AGREED;
      assert.equal(planCell(mode, access, baseLocal(localCase), baseRemote(relayCase), base), expected);
    });
  }
}
