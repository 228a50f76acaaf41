import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EscaleError } from '../../core/errors.js';
import { backupArchiveOf, detectCompression, formatManifest, parseManifest, type BackupManifest } from './backup-archive.js';

const code = (error: unknown): string | undefined => (error instanceof EscaleError ? error.code : undefined);

describe('backup archive names and manifest', () => {
  it('takes the compression from the last extension, appends .tar.bz2 to a bare name, refuses others', () => {
    assert.deepEqual(backupArchiveOf('/b/x.tar'), { path: '/b/x.tar', compression: 'none' });
    assert.deepEqual(backupArchiveOf('x.tar.gz'), { path: 'x.tar.gz', compression: 'gzip' });
    assert.deepEqual(backupArchiveOf('x.gz'), { path: 'x.gz', compression: 'gzip' });
    assert.deepEqual(backupArchiveOf('x.tar.bz2'), { path: 'x.tar.bz2', compression: 'bzip2' });
    assert.deepEqual(backupArchiveOf('dir.d/backup'), { path: 'dir.d/backup.tar.bz2', compression: 'bzip2' });
    for (const [name, ext] of [['x.tgz', '.tgz'], ['x.tar.xz', '.xz'], ['x.zip', '.zip']]) {
      assert.throws(() => backupArchiveOf(name as string), (e: unknown) => code(e) === 'Usage' && (e as Error).message === `compression not supported: '${ext}'`);
    }
  });

  it('recognises the compression by content', () => {
    assert.equal(detectCompression(Buffer.from('BZh91AY')), 'bzip2');
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
    assert.equal(detectCompression(Buffer.from('.escale-backup.json')), 'none');
    assert.equal(detectCompression(Buffer.alloc(0)), 'none');
  });

  it('reads back what it writes; refuses broken manifests and newer formats', () => {
    const manifest: BackupManifest = { format: 1, section: 'alice', protocol: 'ftp', relay: 'index', date: '2026-11-26T01:00:00.000Z' };
    assert.deepEqual(parseManifest(formatManifest(manifest)), manifest);
    assert.throws(() => parseManifest(Buffer.from('not json')), (e: unknown) => code(e) === 'CorruptRecord');
    assert.throws(() => parseManifest(Buffer.from('{"format":1,"section":"a"}')), (e: unknown) => code(e) === 'CorruptRecord');
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...manifest, relay: 'other' }))), (e: unknown) => code(e) === 'CorruptRecord');
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...manifest, format: 2 }))), (e: unknown) => code(e) === 'Unsupported' && /newer escale/.test((e as Error).message));
  });
});
