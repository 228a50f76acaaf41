import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { relPath, type RelPath } from '../core/relpath.js';
import { countProgressDue, percentProgress, planIndexFix, planPlaceholderFix } from './recovery-planner.js';

const p = (...names: string[]): RelPath[] => names.map((n) => relPath(n));

describe('planPlaceholderFix', () => {
  const relay = new Map<RelPath, { data?: true; lock?: true; placeholder?: true }>([
    [relPath('data.txt'), { data: true, placeholder: true }],
    [relPath('record.txt'), { placeholder: true }],
    [relPath('locked.txt'), { lock: true }],
  ]);
  const paths = p('record.txt', 'new.txt', 'locked.txt', 'data.txt');
  const plan = (fast: boolean, update: boolean): string[] => planPlaceholderFix({ paths, relay, fast, update }).map((s) => `${s.path}:${s.outcome}`);

  test('default: every file is written except those whose data is on the relay (locks are checked when writing)', () => {
    assert.deepEqual(plan(false, false), ['data.txt:has-data', 'locked.txt:write', 'new.txt:write', 'record.txt:write']);
  });
  test('-u keeps existing placeholders', () => {
    assert.deepEqual(plan(false, true), ['data.txt:has-data', 'locked.txt:write', 'new.txt:write', 'record.txt:keep']);
  });
  test('-f writes only files the relay does not know at all', () => {
    assert.deepEqual(plan(true, false), ['data.txt:known', 'locked.txt:known', 'new.txt:write', 'record.txt:known']);
    assert.deepEqual(plan(true, true), plan(true, false));
  });
});

describe('planIndexFix', () => {
  const files = p('z.txt', 'docs/b.txt', 'docs/a.txt', 'music/x/y.mp3');
  test('single page', () => {
    assert.deepEqual([...planIndexFix(files, { kind: 'single' })], [['0', p('docs/a.txt', 'docs/b.txt', 'music/x/y.mp3', 'z.txt')]]);
  });
  test('topdir pages, restricted to the requested ones; a requested page without files is empty', () => {
    const scheme = { kind: 'topdir', depth: 1 } as const;
    assert.deepEqual([...planIndexFix(files, scheme)].map(([page, group]) => [page, group.length]), [['0', 1], ['docs', 2], ['music', 1]]);
    assert.deepEqual([...planIndexFix(files, scheme, ['music', 'gone'])], [['gone', []], ['music', p('music/x/y.mp3')]]);
  });
});

describe('progress', () => {
  test('every file under 1000 files, else every 20th and the last', () => {
    assert.ok(countProgressDue(7, 999));
    assert.ok(!countProgressDue(7, 1000));
    assert.ok(countProgressDue(40, 1000));
    assert.ok(countProgressDue(1001, 1001));
  });
  test('percent lines', () => {
    assert.equal(percentProgress(1, 3), 'progress: 33%');
    assert.equal(percentProgress(0, 0), 'progress: 100%');
  });
});
