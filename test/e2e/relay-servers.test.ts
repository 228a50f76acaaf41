// End-to-end: real `escale --once` processes sync alice → bob and back through real relay servers
// (proftpd plain and explicit TLS, Apache mod_dav over HTTP and HTTPS, rclone serve webdav over
// HTTPS), with the placeholder protocol and with the index protocol (`index = 1`).
import { describe, test } from 'node:test';
import {
  APACHE_HTTP,
  APACHE_HTTPS,
  PROFTPD_FTP,
  PROFTPD_FTPS,
  RCLONE_WEBDAV,
  startServer,
  syncBothWays,
  type ServerKind,
} from './relay-servers-support.js';

const PROTOCOL_OF: Record<string, string> = {
  [PROFTPD_FTP.name]: 'ftp',
  [PROFTPD_FTPS.name]: 'ftps',
  [APACHE_HTTP.name]: 'http',
  [APACHE_HTTPS.name]: 'https',
  [RCLONE_WEBDAV.name]: 'webdav',
};

for (const kind of [PROFTPD_FTP, PROFTPD_FTPS, APACHE_HTTP, APACHE_HTTPS, RCLONE_WEBDAV] satisfies ServerKind[]) {
  describe(`sync through ${kind.name}`, () => {
    // why: the two protocols use separate relay folders of one server and run side by side.
    test('placeholder protocol and index protocol (index = 1)', { concurrency: 2 }, async (t) => {
      const handle = await startServer(t, kind);
      if (handle === undefined) return;
      try {
        await Promise.all([
          t.test('placeholder protocol: alice → bob and back', (st) => syncBothWays(handle, 'relay/placeholder', {}, st, { protocol: PROTOCOL_OF[handle.kind.name] as string, port: handle.current().port, directory: 'relay/placeholder' })),
          t.test('index protocol: alice → bob and back', (st) => syncBothWays(handle, 'relay/index', { index: 1 }, st, { protocol: PROTOCOL_OF[handle.kind.name] as string, port: handle.current().port, directory: 'relay/index' })),
        ]);
      } finally {
        await handle.stop();
      }
    });
  });
}
