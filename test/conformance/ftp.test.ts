// The conformance suite against proftpd over plain FTP, plus login failure and reconnection.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { relPath } from '../../src/core/relpath.js';
import { openFtpBackend } from '../../src/relay/backends/ftp/ftp-backend.js';
import { describeBackend, expectCode, readAll } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';
import { PROFTPD_BINARIES, proftpdOptions, startProftpd, withProftpd } from './servers/proftpd.js';

// why: FTP has no atomic create-if-absent, so `exclusive` is a check before the rename (best effort).
describeBackend('ftp (proftpd)', serverHarness('ftp-proftpd', {
  binaries: PROFTPD_BINARIES,
  options: { exclusive: false },
  async start(env) {
    return openFtpBackend(proftpdOptions(await startProftpd(env, { tls: false })));
  },
}));

describe('ftp (proftpd) sessions', () => {
  it('a wrong password gives PermissionDenied without the password in the message', async (t) => {
    await withProftpd(t, { tls: false }, async (server) => {
      const wrong = 'not-the-Secret-42';
      const error = await expectCode(openFtpBackend(proftpdOptions(server, { password: wrong })), 'PermissionDenied');
      assert.ok(!error.message.includes(wrong), error.message);
      assert.ok(!error.message.includes(server.password), error.message);
    });
  });

  it('reconnects after the server dropped an idle connection', async (t) => {
    // why: 3 s, not 1: on a loaded machine the login alone may leave the session idle for a second.
    await withProftpd(t, { tls: false, idleTimeoutS: 3 }, async (server) => {
      const backend = await openFtpBackend(proftpdOptions(server, { maxConnections: 1 }));
      try {
        await backend.put(relPath('a.txt'), Buffer.from('abc'));
        await sleep(5000); // proftpd closes the idle session (421) meanwhile
        assert.equal((await backend.stat(relPath('a.txt'))).size, 3);
        assert.equal((await readAll(await backend.get(relPath('a.txt')))).toString(), 'abc');
      } finally {
        await backend.close();
      }
    });
  });
});
