// The conformance suite against OpenSSH sshd (native ssh2 backend), plus host key checks,
// password and encrypted-key logins and the refusal of a wrong password.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { relPath } from '../../src/core/relpath.js';
import { openSftpBackend } from '../../src/relay/backends/sftp/sftp-backend.js';
import { describeBackend, expectCode, readAll } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';
import { SSHD_BINARIES, sshdOptions, startSshd, withSshd } from './servers/sshd.js';

describeBackend('sftp (OpenSSH sshd)', serverHarness('sftp-sshd', {
  binaries: SSHD_BINARIES,
  async start(env) {
    const server = await startSshd(env);
    // why: the session runs as the server's test account; planted names must be its own to be deleted.
    return { backend: await openSftpBackend(sshdOptions(server)), localRoot: join(server.home, 'relay') };
  },
}));

describe('sftp (OpenSSH sshd) sessions', () => {
  it('checks the host key: first contact, mismatch, configured fingerprint', async (t) => {
    await withSshd(t, async (server) => {
      const dir = join(server.home, '..');
      const empty = join(dir, 'known_hosts_empty');
      await writeFile(empty, '# nothing known\n');
      const first = await expectCode(openSftpBackend(sshdOptions(server, { hostKey: { kind: 'known-hosts', file: empty } })), 'PermissionDenied');
      assert.match(first.message, /not known yet \(first contact\)/);
      assert.ok(first.message.includes(server.fingerprint), first.message);
      assert.ok(first.message.includes(`host key = ${server.fingerprint}`), first.message);

      const wrong = join(dir, 'known_hosts_wrong');
      await writeFile(wrong, `[127.0.0.1]:${server.port} ${server.otherPublicKey}\n`);
      const mismatch = await expectCode(openSftpBackend(sshdOptions(server, { hostKey: { kind: 'known-hosts', file: wrong } })), 'PermissionDenied');
      assert.match(mismatch.message, /REFUSED.*CHANGED/);
      assert.ok(mismatch.message.includes(server.fingerprint), mismatch.message);
      const otherFingerprint = mismatch.message.match(/expects (SHA256:[A-Za-z0-9+/]+)/)?.[1];
      assert.ok(otherFingerprint !== undefined && otherFingerprint !== server.fingerprint, mismatch.message);

      const byPrint = await expectCode(openSftpBackend(sshdOptions(server, { hostKey: { kind: 'fingerprint', fingerprint: otherFingerprint } })), 'PermissionDenied');
      assert.ok(byPrint.message.includes(server.fingerprint) && byPrint.message.includes(otherFingerprint), byPrint.message);

      const good = await openSftpBackend(sshdOptions(server, { hostKey: { kind: 'fingerprint', fingerprint: server.fingerprint } }));
      await good.put(relPath('ok.txt'), Buffer.from('ok'));
      assert.equal((await readAll(await good.get(relPath('ok.txt')))).toString(), 'ok');
      await good.close();

      const hashed = join(dir, 'known_hosts_hashed');
      await writeFile(hashed, `[127.0.0.1]:${server.port} ${server.hostPublicKey}\n`);
      const { execFile } = await import('node:child_process');
      await new Promise<void>((resolve, reject) => execFile('ssh-keygen', ['-H', '-f', hashed], (e) => (e ? reject(e) : resolve())));
      const viaHash = await openSftpBackend(sshdOptions(server, { hostKey: { kind: 'known-hosts', file: hashed } }));
      assert.equal((await viaHash.stat(relPath('ok.txt'))).size, 2);
      await viaHash.close();
    });
  });

  it('logs in with an encrypted key and its passphrase; a wrong passphrase is a Config error', async (t) => {
    await withSshd(t, async (server) => {
      const backend = await openSftpBackend(sshdOptions(server, { keyfile: server.encryptedKeyFile, keyPassphrase: server.keyPassphrase }));
      await backend.put(relPath('k.txt'), Buffer.from('key'));
      await backend.close();
      const error = await expectCode(openSftpBackend(sshdOptions(server, { keyfile: server.encryptedKeyFile, keyPassphrase: 'wrong-Passphrase-99' })), 'Config', 'PermissionDenied');
      assert.ok(!error.message.includes('wrong-Passphrase-99'), error.message);
    });
  });

  it('logs in with a password; a wrong password gives PermissionDenied without the password in the message', async (t) => {
    await withSshd(t, async (server) => {
      if (server.password === undefined) {
        t.skip('password logins need root (the harness creates a system user)');
        return;
      }
      const backend = await openSftpBackend(sshdOptions(server, { keyfile: undefined, password: server.password }));
      await backend.put(relPath('p.txt'), Buffer.from('pw'));
      assert.equal((await backend.stat(relPath('p.txt'))).size, 2);
      await backend.close();
      const wrong = 'not-the-Secret-42';
      const error = await expectCode(openSftpBackend(sshdOptions(server, { keyfile: undefined, password: wrong })), 'PermissionDenied');
      assert.ok(!error.message.includes(wrong), error.message);
      assert.ok(!error.message.includes(server.password), error.message);
    });
  });

  it('reconnects after the connection was dropped', async (t) => {
    await withSshd(t, async (server) => {
      const backend = await openSftpBackend(sshdOptions(server));
      try {
        await backend.put(relPath('r.txt'), Buffer.from('abc'));
        const live = (backend as unknown as { live?: { client: { end(): void } } }).live;
        live?.client.end();
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.equal((await readAll(await backend.get(relPath('r.txt')))).toString(), 'abc');
      } finally {
        await backend.close();
      }
    });
  });
});
