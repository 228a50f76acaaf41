import { homedir } from 'node:os';
import { join } from 'node:path';
import { EscaleError } from '../../../core/errors.js';
import type { Backend } from '../../backend.js';
import { positiveNumberOption } from '../target-options.js';
import type { BackendDescriptor, OpenContext, RelayTarget } from '../descriptor.js';
import type { SftpBackendOptions } from './sftp-backend.js';
import { normaliseFingerprint } from './sftp-host-key.js';

/**
 * Maps a relay target to native SFTP options. Backend-specific keys: `host key`/`fingerprint`
 * (SHA256 form), `known hosts` (default ~/.ssh/known_hosts), `key passphrase`, `ssh agent`
 * (default SSH_AUTH_SOCK; `no` disables), `max connections`, `timeout` (s).
 */
export function sftpOptionsFrom(target: RelayTarget, environment: Readonly<Record<string, string | undefined>> = process.env): SftpBackendOptions {
  const o = target.options;
  if (!target.host) throw new EscaleError('Config', 'sftp relay: the host address is missing', { key: 'host address' });
  if (!target.user) throw new EscaleError('Config', `sftp relay ${target.host}: the user name is missing`, { key: 'user' });
  const printed = o['host key'] ?? o['fingerprint'];
  const hostKey = printed !== undefined
    ? { kind: 'fingerprint' as const, fingerprint: normaliseFingerprint(printed) }
    : { kind: 'known-hosts' as const, file: o['known hosts'] ?? join(homedir(), '.ssh', 'known_hosts') };
  const agentOption = o['ssh agent'];
  const agent = agentOption === undefined ? environment.SSH_AUTH_SOCK : /^(no|false|off|0)$/i.test(agentOption) ? undefined : agentOption;
  const number = (key: string): number | undefined => positiveNumberOption(target, key);
  const timeout = number('timeout');
  const maxConnections = number('max connections');
  const passphrase = o['key passphrase'] ?? o['keyfile passphrase'];
  return {
    host: target.host,
    ...(target.port !== undefined ? { port: target.port } : {}),
    directory: target.directory,
    user: target.user,
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.keyfile !== undefined ? { keyfile: target.keyfile } : {}),
    ...(passphrase !== undefined ? { keyPassphrase: passphrase } : {}),
    ...(agent !== undefined && agent !== '' ? { agent } : {}),
    hostKey,
    ...(maxConnections !== undefined ? { maxConnections } : {}),
    ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
  };
}

/** Registry entry for `sftp`: an rclone remote name goes through rclone (escale 0.7 configs; the registry's rule), a host through ssh2. */
export const sftpDescriptor: BackendDescriptor = {
  name: 'sftp',
  aliases: [],
  describe: 'SFTP over SSH (native; an rclone remote name as address goes through rclone)',
  available: true,
  rcloneRemoteAddress: true,
  async open(target: RelayTarget, context: OpenContext): Promise<Backend> {
    const options = sftpOptionsFrom(target);
    const { openSftpBackend } = await import('./sftp-backend.js');
    return openSftpBackend({ ...options, ...(context.logger === undefined ? {} : { logger: context.logger }) });
  },
};
