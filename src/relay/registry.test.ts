import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EscaleError } from '../core/errors.js';
import { relPath } from '../core/relpath.js';
import { availableProtocols, backendDescriptors, findBackend, openBackend } from './registry.js';

const SEED_PROTOCOLS = ['file', 'ftp', 'ftps', 'webdav', 'http', 'https', 'rclone', 'dropbox', 'googlecloud', 'googledrive', 'google',
  'amazoncloud', 's3', 'onedrive', 'b2', 'hubic', 'sftp', 'swift', 'ssh'];

describe('backend registry', () => {
  it('knows every protocol name and alias of escale 0.7', () => {
    for (const protocol of SEED_PROTOCOLS) assert.ok(findBackend(protocol), protocol);
    assert.equal(findBackend('FTPS').name, 'ftp');
    assert.equal(findBackend('https').name, 'webdav');
    assert.equal(findBackend('dropbox').name, 'rclone');
    assert.equal(findBackend('google').name, 'googledrive');
  });

  it('lists each descriptor once, available ones first', () => {
    const names = backendDescriptors().map((d) => d.name);
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(availableProtocols(), ['file', 'memory', 'ftp', 'webdav', 'sftp', 's3', 'rclone']);
    assert.deepEqual(names.slice(0, 2), ['file', 'memory']);
    assert.deepEqual(backendDescriptors().filter((d) => !d.available).map((d) => d.name), ['googledrive', 'ssh'], 'unavailable descriptors come last');
    assert.deepEqual(names.slice(-2), ['googledrive', 'ssh']);
    const aliases = backendDescriptors().flatMap((d) => [d.name, ...d.aliases]);
    assert.equal(new Set(aliases).size, aliases.length, 'no alias claimed twice');
  });

  it('refuses an unavailable protocol with a clear Unsupported error', async () => {
    await assert.rejects(openBackend({ protocol: 'googledrive', host: '/mnt/drive', directory: '', options: {} }), (e: unknown) => {
      assert.ok(e instanceof EscaleError);
      assert.equal(e.code, 'Unsupported');
      assert.equal(e.message, "protocol 'googledrive' is not available in this build; available: file, memory, ftp, webdav, sftp, s3, rclone");
      return true;
    });
    assert.equal(findBackend('google').available, false);
    assert.equal(findBackend('ftp').available, true);
    assert.throws(() => findBackend('gopher'), (e: unknown) => e instanceof EscaleError && e.code === 'Unsupported' && /unknown protocol 'gopher'/.test(e.message));
  });

  it('sends an sftp or s3 address that names an rclone remote to the rclone backend, by the registry rule', async () => {
    assert.deepEqual(backendDescriptors().filter((d) => d.rcloneRemoteAddress === true).map((d) => d.name), ['sftp', 's3']);
    for (const protocol of ['sftp', 's3']) {
      // why: a missing rclone binary fails with a message naming its key only on the rclone path.
      const target = { protocol, host: 'mybox', user: 'u', directory: 'bucket/relay', options: { 'rclone remote': 'yes', 'rclone binary': '/nonexistent/rclone' } };
      await assert.rejects(openBackend(target), (e: unknown) => e instanceof EscaleError && e.code === 'Config' && /rclone binary/.test(e.message));
    }
  });

  it('opens file (host joined with directory) and memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'escale-registry-'));
    try {
      await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'relay')));
      const file = await openBackend({ protocol: 'file', host: dir, directory: 'relay', options: {} });
      await file.put(relPath('a.txt'), Buffer.from('a'));
      assert.ok(file.id.endsWith('/relay'));
      await file.close();
      const memory = await openBackend({ protocol: 'memory', directory: '', options: {} });
      assert.equal(memory.features.renameOverwrites, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
