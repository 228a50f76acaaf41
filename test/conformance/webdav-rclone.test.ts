// The conformance suite against `rclone serve webdav` over HTTP and HTTPS, plus auth and TLS checks.
import { openWebdavBackend } from '../../src/relay/backends/webdav/webdav-backend.js';
import { describeBackend } from './backend-suite.js';
import { davOptions } from './servers/apache.js';
import { serverHarness } from './servers/harness.js';
import { RCLONE_BINARIES, startRcloneWebdav } from './servers/rclone-webdav.js';
import { describeDavChecks } from './webdav-checks.js';

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http';
  describeBackend(`webdav ${scheme} (rclone serve webdav)`, serverHarness(`webdav-rclone-${scheme}`, {
    binaries: RCLONE_BINARIES,
    async start(env) {
      return openWebdavBackend(davOptions(await startRcloneWebdav(env, tls)));
    },
  }));
}

describeDavChecks('rclone serve webdav', RCLONE_BINARIES, startRcloneWebdav);
