// The conformance suite against Apache mod_dav_fs over HTTP and HTTPS, plus auth and TLS checks.
import { openWebdavBackend } from '../../src/relay/backends/webdav/webdav-backend.js';
import { describeBackend } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';
import { APACHE_BINARIES, davOptions, startApache } from './servers/apache.js';
import { describeDavChecks } from './webdav-checks.js';

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http';
  describeBackend(`webdav ${scheme} (apache mod_dav)`, serverHarness(`webdav-apache-${scheme}`, {
    binaries: APACHE_BINARIES,
    // why: mod_dav_fs checks `Overwrite: F` and then renames, so two racing exclusive puts can
    // both win; exclusive is best effort there (rclone serialises MOVEs per target and passes).
    options: { exclusive: false },
    async start(env) {
      return openWebdavBackend(davOptions(await startApache(env, tls)));
    },
  }));
}

describeDavChecks('apache mod_dav', APACHE_BINARIES, startApache);
