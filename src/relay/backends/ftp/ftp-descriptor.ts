import { EscaleError } from '../../../core/errors.js';
import type { Backend } from '../../backend.js';
import { positiveNumberOption, tlsConnectionOf } from '../target-options.js';
import type { BackendDescriptor, OpenContext, RelayTarget } from '../descriptor.js';
import type { FtpBackendOptions } from './ftp-backend.js';

/** Maps a relay target to FTP backend options; backend-specific keys: `max connections`, `timeout` (s), `ca file`. */
export function ftpOptionsFrom(target: RelayTarget): FtpBackendOptions {
  const protocol = target.protocol.trim().toLowerCase() === 'ftps' ? 'ftps' : 'ftp';
  if (!target.host) throw new EscaleError('Config', `${protocol} relay: the host address is missing`, { key: 'host address' });
  const number = (key: string): number | undefined => positiveNumberOption(target, key);
  const timeout = number('timeout');
  return {
    protocol,
    ...tlsConnectionOf(target),
    host: target.host,
    maxConnections: number('max connections'),
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
  };
}

/** Registry entry for `ftp` (plain) and `ftps` (explicit TLS). */
export const ftpDescriptor: BackendDescriptor = {
  name: 'ftp',
  aliases: ['ftps'],
  describe: 'FTP, or FTPS with explicit TLS',
  available: true,
  async open(target: RelayTarget, context: OpenContext): Promise<Backend> {
    const options = ftpOptionsFrom(target);
    const { openFtpBackend } = await import('./ftp-backend.js');
    return openFtpBackend({ ...options, ...(context.logger === undefined ? {} : { logger: context.logger }) });
  },
};
