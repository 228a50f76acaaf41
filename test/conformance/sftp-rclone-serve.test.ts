// The conformance suite against `rclone serve sftp` (native ssh2 backend, password login): a
// server whose hardlink@openssh.com answers OK and creates nothing, and whose plain rename overwrites.
import { openSftpBackend } from '../../src/relay/backends/sftp/sftp-backend.js';
import { describeBackend } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';
import { RCLONE_SFTP_BINARIES, startRcloneSftp } from './servers/rclone-sftp.js';

// why: without a working hardlink@openssh.com and with an overwriting rename, `exclusive` is a check before the rename (best effort).
describeBackend('sftp (rclone serve sftp)', serverHarness('sftp-rclone-serve', {
  binaries: RCLONE_SFTP_BINARIES,
  options: { exclusive: false },
  async start(env) {
    const server = await startRcloneSftp(env);
    return openSftpBackend({
      host: '127.0.0.1',
      port: server.port,
      directory: 'relay',
      user: server.user,
      password: server.password,
      hostKey: { kind: 'fingerprint', fingerprint: server.fingerprint },
    });
  },
}));
