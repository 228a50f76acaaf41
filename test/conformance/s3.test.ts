// The conformance suite against s3rver over HTTP and HTTPS (native AWS SDK backend), plus
// credential refusal and a missing bucket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { S3RVER_QUIRKS, openS3Backend, type S3BackendOptions } from '../../src/relay/backends/s3/s3-backend.js';
import { describeBackend, expectCode } from './backend-suite.js';
import { reportSkip, serverHarness } from './servers/harness.js';
import { s3rverMissing, startS3rver, type S3rverServer } from './servers/s3rver.js';

function s3rverOptions(server: S3rverServer, overrides: Partial<S3BackendOptions> = {}): S3BackendOptions {
  return {
    endpoint: server.endpoint,
    bucket: server.bucket,
    prefix: 'escale/relay',
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    forcePathStyle: true,
    verifySsl: false,
    // why: s3rver ignores If-None-Match, so `exclusive` is a check before the write (best effort).
    conditionalWrites: false,
    quirks: S3RVER_QUIRKS,
    ...overrides,
  };
}

for (const tls of [false, true]) {
  describeBackend(`s3 (s3rver, ${tls ? 'https' : 'http'})`, serverHarness(`s3-s3rver-${tls ? 'https' : 'http'}`, {
    precondition: s3rverMissing,
    ...(tls ? { binaries: ['openssl'] } : {}),
    // why: s3rver stores object KEY as the file `KEY._S3rver_object` (and `KEY._S3rver_metadata.json`), 22 bytes longer.
    options: { exclusive: false, largeBytes: 12 * 1024 * 1024, longestName: 233 },
    async start(env) {
      return openS3Backend(s3rverOptions(await startS3rver(env, { tls })));
    },
  }));
}

describe('s3 (s3rver) sessions', () => {
  it('a wrong secret gives PermissionDenied without the secret; a missing bucket gives NotFound', async (t) => {
    let server: S3rverServer | undefined;
    const harness = serverHarness('s3rver-sessions', {
      precondition: s3rverMissing,
      async start(env) {
        server = await startS3rver(env, { tls: false });
        return openS3Backend(s3rverOptions(server));
      },
    });
    const started = await harness.start();
    if ('skip' in started) {
      reportSkip('s3rver sessions', started.skip);
      t.skip(started.skip);
      return;
    }
    try {
      const s = server as S3rverServer;
      // why: s3rver checks the access key id but never verifies V4 signatures, so a wrong secret alone passes there.
      const wrong = 'not-the-Secret-42';
      const error = await expectCode(openS3Backend(s3rverOptions(s, { credentials: { accessKeyId: 'WRONGKEY', secretAccessKey: wrong } })), 'PermissionDenied');
      assert.ok(!error.message.includes(wrong), error.message);
      await expectCode(openS3Backend(s3rverOptions(s, { bucket: 'no-such-bucket' })), 'NotFound');
    } finally {
      await started.stop();
    }
  });
});
