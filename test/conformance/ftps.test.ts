// The conformance suite against proftpd over explicit TLS (TLSRequired), plus certificate checks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openFtpBackend } from '../../src/relay/backends/ftp/ftp-backend.js';
import { describeBackend, expectCode } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';
import { PROFTPD_BINARIES, proftpdOptions, startProftpd, withProftpd } from './servers/proftpd.js';

// why: FTP has no atomic create-if-absent, so `exclusive` is a check before the rename (best effort).
describeBackend('ftps (proftpd, explicit TLS)', serverHarness('ftps-proftpd', {
  binaries: PROFTPD_BINARIES,
  options: { exclusive: false, manyFiles: 1200 },
  async start(env) {
    return openFtpBackend(proftpdOptions(await startProftpd(env, { tls: true })));
  },
}));

describe('ftps (proftpd) certificates and login', () => {
  it('refuses the self-signed certificate unless verify ssl is off or its CA is given', async (t) => {
    await withProftpd(t, { tls: true }, async (server) => {
      const refused = await expectCode(openFtpBackend(proftpdOptions(server, { verifySsl: undefined })), 'PermissionDenied');
      assert.match(refused.message, /certificate/);
      await expectCode(openFtpBackend(proftpdOptions(server, { verifySsl: true })), 'PermissionDenied');
      const trusted = await openFtpBackend(proftpdOptions(server, { verifySsl: true, host: 'localhost', caFile: server.certFile }));
      assert.deepEqual(await collectNames(trusted), []);
      await trusted.close();
      const insecure = await openFtpBackend(proftpdOptions(server, { verifySsl: false }));
      await insecure.close();
    });
  });

  it('a plain FTP client is refused by a TLS-only server', async (t) => {
    await withProftpd(t, { tls: true }, async (server) => {
      await expectCode(openFtpBackend(proftpdOptions(server, { protocol: 'ftp' })), 'PermissionDenied', 'Unavailable');
    });
  });

  it('a wrong password gives PermissionDenied without the password in the message', async (t) => {
    await withProftpd(t, { tls: true }, async (server) => {
      const wrong = 'not-the-Secret-42';
      const error = await expectCode(openFtpBackend(proftpdOptions(server, { password: wrong })), 'PermissionDenied');
      assert.ok(!error.message.includes(wrong), error.message);
    });
  });

  it('pins the TLS version through ssl version', async (t) => {
    await withProftpd(t, { tls: true }, async (server) => {
      const v12 = await openFtpBackend(proftpdOptions(server, { sslVersion: 'TLSv1.2' }));
      await v12.close();
      // proftpd is configured for TLSv1.2 and TLSv1.3 only.
      await expectCode(openFtpBackend(proftpdOptions(server, { sslVersion: 'TLSv1.1' })), 'Unavailable', 'PermissionDenied', 'Protocol');
      await expectCode(openFtpBackend(proftpdOptions(server, { sslVersion: 'SSLv3' })), 'Config');
    });
  });
});

async function collectNames(backend: { list(dir: never): AsyncIterable<{ path: string }> }): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of backend.list('' as never)) out.push(entry.path);
  return out;
}
