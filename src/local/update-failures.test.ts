import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UpdateFailureLog } from './update-failures.js';
import { inTempDir } from '../../test/kit/temp-dir.js';

const withDir = (body: (dir: string) => Promise<void>): Promise<void> => inTempDir('update-failures-', body);

test('failure counts survive a reopen; pruned keys are forgotten for good', () =>
  withDir(async (dir) => {
    const file = join(dir, 'uf');
    const log = await UpdateFailureLog.open(file);
    assert.equal(log.failures('0\u00001700000000\u0000a'), 0);
    assert.equal(log.recordFailure('0\u00001700000000\u0000a'), 1);
    assert.equal(log.recordFailure('0\u00001700000000\u0000a'), 2);
    assert.equal(log.recordFailure('docs\u00001700000100\u0000b'), 1);
    // why: no close, as after a crash: every change is on disk at once.
    const reopened = await UpdateFailureLog.open(file);
    assert.equal(reopened.failures('0\u00001700000000\u0000a'), 2);
    assert.equal(reopened.failures('docs\u00001700000100\u0000b'), 1);
    reopened.prune((key) => key.startsWith('docs'));
    await reopened.close();
    const third = await UpdateFailureLog.open(file);
    assert.equal(third.failures('0\u00001700000000\u0000a'), 0);
    assert.equal(third.failures('docs\u00001700000100\u0000b'), 1);
    assert.equal(third.size, 1);
    await third.close();
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  }));

test('a file that is not a failure log is moved aside, never fatal; in-memory logs write nothing', () =>
  withDir(async (dir) => {
    const file = join(dir, 'uf');
    await writeFile(file, 'something else\n');
    const log = await UpdateFailureLog.open(file);
    assert.equal(log.recordFailure('k'), 1);
    await log.close();
    assert.equal(await readFile(`${file}.foreign`, 'utf8'), 'something else\n');
    const memory = UpdateFailureLog.inMemory();
    assert.equal(memory.recordFailure('k'), 1);
    assert.equal(memory.failures('k'), 1);
  }));
