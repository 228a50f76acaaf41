import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { relPath } from '../core/relpath.js';
import type { MetadataRecord } from '../relay/protocol/records.js';
import { ResendLog } from './resend-log.js';
import { inTempDir } from '../../test/kit/temp-dir.js';

const A = relPath('a.txt');
const B = relPath('dir/b é.txt');
const v1: MetadataRecord = { version: '1.0', pusher: 'alice', timestamp: 1000, checksum: 'aa', pullers: ['carol'] };
const v2: MetadataRecord = { ...v1, timestamp: 2000, checksum: 'bb' };

const withDir = (body: (dir: string) => Promise<void>): Promise<void> => inTempDir('resend-log-', body);

test('requests are counted per path and version, survive a crash (no close), and a new version starts again at 1', () =>
  withDir(async (dir) => {
    const file = join(dir, 'rs');
    const log = await ResendLog.open(file);
    assert.equal(log.asks(A, v1), 0);
    assert.equal(log.recordAsk(A, v1), 1);
    assert.equal(log.recordAsk(A, { ...v1, pullers: [] }), 2, 'pullers are not part of the version');
    assert.equal(log.recordAsk(B, v2), 1);
    const reopened = await ResendLog.open(file);
    assert.equal(reopened.asks(A, v1), 2);
    assert.equal(reopened.asks(A, v2), 0);
    assert.deepEqual(reopened.get(A)?.record, { version: '1.0', pusher: 'alice', timestamp: 1000, checksum: 'aa', pullers: [] });
    assert.equal(reopened.recordAsk(A, v2), 1, 'another version replaces the old request');
    assert.equal(reopened.asks(A, v1), 0);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    await reopened.close();
  }));

test('settle forgets requests whose path now holds another version or names this client; forget is durable', () =>
  withDir(async (dir) => {
    const file = join(dir, 'rs');
    const log = await ResendLog.open(file);
    log.recordAsk(A, v1);
    log.recordAsk(B, v1);
    log.recordAsk(relPath('c'), v1);
    const current = new Map([
      [A, v2],
      [B, { ...v1, pullers: ['carol', 'me'] }],
    ]);
    log.settle((path) => current.get(path), 'me');
    assert.deepEqual(log.paths(), ['c']);
    log.settle(() => ({ ...v1, pullers: ['bob'] }), 'me');
    assert.deepEqual(log.paths(), ['c'], 'the same version without this client: still pending');
    log.forget(relPath('c'));
    await log.close();
    assert.equal((await ResendLog.open(file)).size, 0);
  }));

test('a torn last line (crash during an append) and a foreign file are survived', () =>
  withDir(async (dir) => {
    const file = join(dir, 'rs');
    const log = await ResendLog.open(file);
    log.recordAsk(A, v1);
    await log.close();
    await appendFile(file, '{"p":"dir/b é.txt","n":');
    const torn = await ResendLog.open(file);
    assert.equal(torn.asks(A, v1), 1);
    assert.equal(torn.size, 1);
    torn.recordAsk(A, v1);
    await torn.close();
    assert.equal((await ResendLog.open(file)).asks(A, v1), 2);
    const other = join(dir, 'other');
    await writeFile(other, 'not a log\n');
    const fresh = await ResendLog.open(other);
    assert.equal(fresh.size, 0);
    assert.equal(await readFile(`${other}.foreign`, 'utf8'), 'not a log\n');
    assert.equal(ResendLog.inMemory().recordAsk(A, v1), 1);
  }));
