// Checks beyond the conformance suite that every WebDAV server passes: wrong password, TLS
// certificate refusal, explicit CA, quota probing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openWebdavBackend } from '../../src/relay/backends/webdav/webdav-backend.js';
import { expectCode } from './backend-suite.js';
import { davOptions, withDavServer, type DavServer } from './servers/apache.js';
import type { ServerEnv } from './servers/harness.js';

/** Registers the auth and TLS checks for one WebDAV server. */
export function describeDavChecks(name: string, binaries: readonly string[], start: (env: ServerEnv, tls: boolean) => Promise<DavServer>): void {
  describe(`webdav (${name}) auth and TLS`, () => {
    for (const tls of [false, true]) {
      it(`${tls ? 'https' : 'http'}: a wrong password gives PermissionDenied without the password in the message`, async (t) => {
        await withDavServer(t, binaries, (env) => start(env, tls), async (server) => {
          const wrong = 'not-the-Secret-42';
          const error = await expectCode(openWebdavBackend(davOptions(server, { password: wrong })), 'PermissionDenied');
          assert.ok(!error.message.includes(wrong), error.message);
          assert.ok(!error.message.includes(server.password), error.message);
        });
      });
    }

    it('https: refuses the self-signed certificate unless verify ssl is off or its CA is given', async (t) => {
      await withDavServer(t, binaries, (env) => start(env, true), async (server) => {
        const refused = await expectCode(openWebdavBackend(davOptions(server, { verifySsl: undefined })), 'PermissionDenied');
        assert.match(refused.message, /certificate/);
        await expectCode(openWebdavBackend(davOptions(server, { verifySsl: true })), 'PermissionDenied');
        const trusted = await openWebdavBackend(davOptions(server, { verifySsl: true, host: 'localhost', caFile: server.certFile }));
        await trusted.mkdir('' as never);
        await trusted.close();
        const insecure = await openWebdavBackend(davOptions(server, { verifySsl: false }));
        await insecure.close();
        await expectCode(openWebdavBackend(davOptions(server, { sslVersion: 'SSLv3' })), 'Config');
      });
    });

    it('quota is a number pair or undefined', async (t) => {
      await withDavServer(t, binaries, (env) => start(env, false), async (server) => {
        const backend = await openWebdavBackend(davOptions(server));
        try {
          const quota = await backend.quota();
          if (quota !== undefined) {
            for (const value of [quota.availableBytes, quota.usedBytes]) assert.ok(value === undefined || (Number.isFinite(value) && value >= 0));
          }
          console.error(`# ${name} quota: ${JSON.stringify(quota)}`);
        } finally {
          await backend.close();
        }
      });
    });
  });
}
