import { EscaleError } from '../../../core/errors.js';
import type { Backend } from '../../backend.js';
import { positiveNumberOption, tlsConnectionOf } from '../target-options.js';
import type { BackendDescriptor, OpenContext, RelayTarget } from '../descriptor.js';
import type { WebdavBackendOptions } from './webdav-backend.js';

/** Maps a relay target to WebDAV options (`webdav` and `https` mean https; backend keys: `max connections`, `ca file`). */
export function webdavOptionsFrom(target: RelayTarget): WebdavBackendOptions {
  const protocol = target.protocol.trim().toLowerCase();
  const scheme = protocol === 'http' ? 'http' : 'https';
  if (!target.host) throw new EscaleError('Config', `${protocol} relay: the host address is missing`, { key: 'host address' });
  return {
    scheme,
    ...tlsConnectionOf(target),
    host: target.host,
    maxConnections: positiveNumberOption(target, 'max connections', { integer: true }),
  };
}

/** Registry entry for `webdav` (https), `https` and `http`. */
export const webdavDescriptor: BackendDescriptor = {
  name: 'webdav',
  aliases: ['http', 'https'],
  describe: 'WebDAV over HTTPS (webdav, https) or HTTP (http)',
  available: true,
  async open(target: RelayTarget, context: OpenContext): Promise<Backend> {
    const options = webdavOptionsFrom(target);
    const { openWebdavBackend } = await import('./webdav-backend.js');
    return openWebdavBackend({ ...options, ...(context.logger === undefined ? {} : { logger: context.logger }) }, context.signal);
  },
};
