import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EscaleError, inRelayScope } from '../core/errors.js';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import { classifyFailure, FailureTracker, skipRounds, type FailureEvent } from './failure-tracker.js';

const denied = new EscaleError('PermissionDenied', "EACCES: permission denied, open '/home/u/docs/secret.txt'");

function tracker(options: { stuckAfter?: number; maxSkipRounds?: number } = {}) {
  const records: LogRecord[] = [];
  const events: FailureEvent[] = [];
  let now = 1_000_000;
  const failures = new FailureTracker({ logger: createLogger([memorySink(records)]), now: () => (now += 1000), onFailure: (e) => events.push(e), ...options });
  const lines = (level?: LogRecord['level']): string[] => records.filter((r) => level === undefined || r.level === level).map((r) => r.message);
  return { failures, records, events, lines };
}

/** Runs `rounds` rounds in which `path` fails whenever it is tried; returns the rounds in which it was tried. */
function failEveryTry(failures: FailureTracker, path: string, rounds: number): number[] {
  const tried: number[] = [];
  for (let round = 1; round <= rounds; round += 1) {
    failures.beginRound();
    if (!failures.blocked('file', path)) {
      tried.push(round);
      failures.fail({ kind: 'file', path }, 'upload', denied);
    }
    failures.endRound(true);
  }
  return tried;
}

test('the back-off skips 0, 1, 3, 7, 15 rounds after each failure, capped', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 40].map((n) => skipRounds(n, 16)), [0, 1, 3, 7, 15, 16, 16]);
  assert.deepEqual([1, 2, 3, 4].map((n) => skipRounds(n, 2)), [0, 1, 2, 2]);
});

test('a file that keeps failing is tried in rounds 1, 2, 4, 8, 16, ... and never more than maxSkip+1 rounds apart', () => {
  const { failures } = tracker({ maxSkipRounds: 4 });
  const tried = failEveryTry(failures, 'secret.txt', 40);
  assert.deepEqual(tried.slice(0, 5), [1, 2, 4, 8, 13], 'skips of 0, 1, 3, then the cap of 4');
  for (let i = 5; i < tried.length; i += 1) assert.equal((tried[i] as number) - (tried[i - 1] as number), 5, 'capped at 4 skipped rounds');
  assert.equal(failures.failingCount, 1);
});

test('one ERROR when a file starts failing, one when it is stuck, one INFO when it is cleared; repeats are DEBUG', () => {
  const { failures, lines } = tracker();
  failEveryTry(failures, 'secret.txt', 20);
  assert.deepEqual(lines('error'), [
    "failed to upload 'secret.txt': PermissionDenied: EACCES: permission denied, open '/home/u/docs/secret.txt'; retried next round",
    "file 'secret.txt' is stuck after 3 failed attempts to upload it (PermissionDenied: EACCES: permission denied, open '/home/u/docs/secret.txt'); escale keeps retrying it (in 4 rounds, then less often) and logs when it succeeds",
  ]);
  const [entry] = failures.list();
  assert.equal(entry?.state, 'stuck');
  assert.equal(entry?.code, 'PermissionDenied');
  assert.equal(entry?.failures, 5);
  assert.ok(lines('debug').some((l) => l.startsWith("failed again to upload 'secret.txt' (attempt 4;")));
  // the file reads again: once it is due, it is tried and does not fail
  let round = 0;
  while (failures.list().length > 0 && round < 40) {
    round += 1;
    failures.beginRound();
    failures.blocked('file', 'secret.txt');
    failures.endRound(true);
  }
  assert.equal(failures.failingCount, 0);
  assert.deepEqual(lines('info'), ["file 'secret.txt' is no longer failing (it had failed 5 time(s) to upload: PermissionDenied)"]);
  // and a new failure is news again
  failures.beginRound();
  failures.fail({ kind: 'file', path: 'secret.txt' }, 'upload', denied);
  assert.equal(lines('error').length, 3);
});

test('a subject failing twice in one round counts once; a subject tried in an aborted round is not cleared', () => {
  const { failures } = tracker();
  failures.beginRound();
  assert.equal(failures.fail({ kind: 'file', path: 'a' }, 'read', denied), true, 'counts in the round report');
  assert.equal(failures.fail({ kind: 'file', path: 'a' }, 'upload', denied), false, 'a repeat within the round does not');
  assert.equal(failures.fail({ kind: 'file', path: 'n' }, 'download', new EscaleError('InvalidName', 'x')), false, 'a refused name does not');
  assert.equal(failures.list()[0]?.failures, 1);
  assert.equal(failures.list()[0]?.action, 'upload', 'the last cause is kept');
  assert.equal(failures.blocked('file', 'a'), true, 'a subject that failed this round is left alone for the rest of it');
  failures.endRound(true);
  failures.beginRound();
  assert.equal(failures.blocked('file', 'a'), false, 'tried again the next round');
  failures.endRound(false);
  assert.equal(failures.list().filter((f) => f.path === 'a').length, 1, 'an aborted round proves nothing');
});

test('a subject that is gone is forgotten; refused names are warnings and do not count as failing', () => {
  const { failures, lines } = tracker();
  failures.beginRound();
  failures.fail({ kind: 'file', path: 'gone.txt' }, 'upload', denied);
  failures.fail({ kind: 'file', path: 'Q: answers.txt' }, 'download', new EscaleError('InvalidName', 'starts with a drive letter'));
  failures.fail({ kind: 'page', path: '0' }, 'read', new EscaleError('CorruptRecord', 'junk'));
  assert.equal(failures.failingCount, 2);
  assert.deepEqual(lines('warning'), ["skipping file 'Q: answers.txt' (cannot download it): InvalidName: starts with a drive letter"]);
  assert.match(lines('error').join('\n'), /failed to read page '0': CorruptRecord: junk/);
  failures.endRound(true);
  failures.beginRound();
  failures.forgetAbsent('file', (path) => path !== 'gone.txt');
  assert.deepEqual(failures.list().map((f) => f.path).sort(), ['0', 'Q: answers.txt']);
  assert.match(lines('info').join('\n'), /file 'gone\.txt' is gone/);
});

test('folders are tried at every scan (no back-off) and cleared by a scan that reads them', () => {
  const { failures, lines } = tracker();
  for (let round = 0; round < 3; round += 1) {
    failures.beginRound();
    failures.fail({ kind: 'folder', path: 'private' }, 'scan', denied);
    failures.endRound(true);
  }
  assert.equal(failures.list()[0]?.state, 'stuck');
  assert.equal(failures.list()[0]?.retryInRounds, 0);
  failures.beginRound();
  failures.tried('folder', 'private');
  failures.endRound(true);
  assert.equal(failures.list().length, 0);
  assert.match(lines('info').join('\n'), /folder 'private' is no longer failing/);
});

test('every failure reaches onFailure with its cause; other errors become Internal with their text', () => {
  const { failures, events } = tracker();
  failures.beginRound();
  failures.fail({ kind: 'file', path: 'a' }, 'download', denied);
  failures.fail({ kind: 'file', path: 'b' }, 'download', new TypeError('x is undefined'));
  assert.deepEqual(events.map((e) => [e.path, e.code, e.message]), [['a', 'PermissionDenied', denied.message], ['b', 'Internal', 'TypeError: x is undefined']]);
});

test('classifyFailure reads the code and the origin, never the message', () => {
  const unavailable = new EscaleError('Unavailable', 'connection reset');
  assert.equal(classifyFailure(unavailable), 'subject', 'a local I/O error (EIO) fails its file only');
  assert.equal(classifyFailure(inRelayScope(unavailable)), 'relay', 'the relay down fails the round');
  assert.equal(classifyFailure(inRelayScope(new EscaleError('QuotaExceeded', 'disk full'))), 'relay');
  assert.equal(classifyFailure(inRelayScope(new EscaleError('PermissionDenied', '403'))), 'subject', 'one file refused by the relay');
  assert.equal(classifyFailure(new EscaleError('Conflict', 'changed')), 'deferred');
  assert.equal(classifyFailure(inRelayScope(new EscaleError('LockBusy', 'held'))), 'deferred');
  assert.equal(classifyFailure(new EscaleError('Aborted', 'stop')), 'aborted');
  assert.equal(classifyFailure(new Error('bug')), 'subject');
  const controller = new AbortController();
  controller.abort();
  assert.equal(classifyFailure(denied, controller.signal), 'aborted');
});
