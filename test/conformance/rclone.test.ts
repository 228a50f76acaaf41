// The conformance suite through the rclone executable: a named remote from an rclone config file
// (an alias of a local folder) and an on-the-fly sftp remote (`rclone type = sftp`) on the test
// sshd, with the password passed by environment. Plus the sftp/s3 native-or-rclone rule, a wrong
// password and a missing rclone binary.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { relPath } from '../../src/core/relpath.js';
import { RcloneBackend, openRcloneBackend } from '../../src/relay/backends/rclone/rclone-backend.js';
import { prefersRclone, rcloneOptionsFrom } from '../../src/relay/backends/rclone/rclone-remote.js';
import type { RelayTarget } from '../../src/relay/backends/descriptor.js';
import { openBackend } from '../../src/relay/registry.js';
import { describeBackend, expectCode, readAll } from './backend-suite.js';
import { findBinary, makeTempDir, reportSkip, serverHarness, type ServerEnv } from './servers/harness.js';
import { SSHD_BINARIES, startSshd, withSshd, type SshdServer } from './servers/sshd.js';

// why: AWS_CA_BUNDLE (set on this machine kind) breaks rclone 1.60's s3 backend; rclone inherits our environment.
delete process.env.AWS_CA_BUNDLE;

// why: rclone has no create-if-absent, so `exclusive` is a check before the move (best effort).
const RCLONE_SUITE = { exclusive: false } as const;

async function localRemote(env: ServerEnv): Promise<{ configFile: string; target: RelayTarget }> {
  const folder = join(env.dir, 'folder');
  await mkdir(folder);
  const configFile = await env.writeFile('rclone.conf', `[escalelocal]\ntype = alias\nremote = ${folder}\n`);
  return { configFile, target: { protocol: 'rclone', host: 'escalelocal', directory: 'relay', options: { 'rclone config': configFile } } };
}

function sftpTarget(server: SshdServer, overrides: Partial<RelayTarget> = {}): RelayTarget {
  return {
    protocol: 'rclone',
    host: '127.0.0.1',
    port: server.port,
    directory: 'relay',
    user: server.user,
    ...(server.password !== undefined ? { password: server.password } : { keyfile: server.keyFile }),
    options: { 'rclone type': 'sftp', 'known hosts': server.knownHosts, 'rclone config': '/dev/null' },
    ...overrides,
  };
}

describeBackend('rclone (named remote: alias of a local folder)', serverHarness('rclone-local', {
  binaries: ['rclone'],
  options: RCLONE_SUITE,
  async start(env) {
    const { target } = await localRemote(env);
    return openBackend(target);
  },
}));

describeBackend('rclone (on-the-fly sftp remote on OpenSSH sshd)', serverHarness('rclone-sftp-sshd', {
  binaries: ['rclone', ...SSHD_BINARIES],
  options: RCLONE_SUITE,
  async start(env) {
    return openRcloneBackend(await rcloneOptionsFrom(sftpTarget(await startSshd(env))));
  },
}));

describe('rclone sessions', () => {
  it('chooses rclone for sftp and s3 only when the address names an rclone remote', async (t) => {
    if (!findBinary('rclone')) {
      reportSkip('rclone choice', 'rclone is not installed');
      t.skip('rclone is not installed');
      return;
    }
    const dir = await makeTempDir('escale-rclone-choice-');
    try {
      const configFile = join(dir.path, 'rclone.conf');
      await (await import('node:fs/promises')).writeFile(configFile, `[mybox]\ntype = alias\nremote = ${dir.path}\n`);
      const target = (host: string | undefined, options: Record<string, string> = {}): RelayTarget =>
        ({ protocol: 'sftp', ...(host === undefined ? {} : { host }), directory: 'relay', options: { 'rclone config': configFile, ...options } });
      assert.equal(await prefersRclone(target('mybox')), true);
      assert.equal(await prefersRclone(target('otherbox')), false, 'a short host name rclone does not know is native');
      assert.equal(await prefersRclone(target('localhost')), false);
      assert.equal(await prefersRclone(target('sftp.example.org')), false);
      assert.equal(await prefersRclone(target('10.0.0.1')), false);
      assert.equal(await prefersRclone(target('user@mybox')), false);
      assert.equal(await prefersRclone(target(undefined)), false);
      assert.equal(await prefersRclone(target('mybox', { 'rclone remote': 'no' })), false);
      assert.equal(await prefersRclone(target('sftp.example.org', { 'rclone remote': 'yes' })), true);
      for (const protocol of ['sftp', 's3', 'dropbox', 'rclone']) {
        const backend = await openBackend({ ...target('mybox'), protocol });
        assert.ok(backend instanceof RcloneBackend, protocol);
        await backend.put(relPath('x.txt'), Buffer.from(protocol));
        assert.equal((await readAll(await backend.get(relPath('x.txt')))).toString(), protocol);
        await backend.close();
      }
    } finally {
      await dir.remove();
    }
  });

  it('a missing rclone binary is a Config error naming the key; an unknown remote is a Config error', async (t) => {
    await expectCode(openBackend({ protocol: 'dropbox', host: 'box', directory: '', options: { 'rclone binary': '/nonexistent/rclone' } }), 'Config')
      .then((e) => assert.match(e.message, /rclone binary/));
    if (!findBinary('rclone')) {
      t.skip('rclone is not installed');
      return;
    }
    const error = await expectCode(openBackend({ protocol: 'dropbox', host: 'nosuchremote', directory: '', options: { 'rclone config': '/dev/null' } }), 'Config', 'NotFound');
    assert.match(error.message, /nosuchremote/);
  });

  it('a wrong sftp password gives PermissionDenied without the password in the message or argv', async (t) => {
    if (!findBinary('rclone')) {
      reportSkip('rclone wrong password', 'rclone is not installed');
      t.skip('rclone is not installed');
      return;
    }
    await withSshd(t, async (server) => {
      if (server.password === undefined) {
        t.skip('password logins need root (the harness creates a system user)');
        return;
      }
      const wrong = 'not-the-Secret-42';
      const options = await rcloneOptionsFrom(sftpTarget(server, { password: wrong, keyfile: undefined }));
      assert.ok(!options.remote.includes(wrong), 'the password is not in argv');
      assert.ok(Object.values(options.env ?? {}).length > 0, 'the password goes by environment');
      const error = await expectCode(openRcloneBackend(options), 'PermissionDenied');
      assert.ok(!error.message.includes(wrong), error.message);
      for (const secret of options.secrets ?? []) assert.ok(!error.message.includes(secret), error.message);
    });
  });
});

