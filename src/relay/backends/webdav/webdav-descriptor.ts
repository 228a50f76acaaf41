import { EscaleError } from '../../../core/errors.js';
import type { Backend } from '../../backend.js';
import type { BackendDescriptor, OpenContext, RelayTarget } from '../../registry.js';
import type { WebdavBackendOptions } from './webdav-backend.js';

/** Maps a relay target to WebDAV options (`webdav` and `https` mean https; backend keys: `max connections`, `ca file`). */
export function webdavOptionsFrom(target: RelayTarget): WebdavBackendOptions {
  const protocol = target.protocol.trim().toLowerCase();
  const scheme = protocol === 'http' ? 'http' : 'https';
  if (!target.host) throw new EscaleError('Config', `${protocol} relay: the host address is missing`, { key: 'host address' });
  const maxText = target.options['max connections'];
  const max = maxText === undefined || maxText === '' ? undefined : Number(maxText);
  if (max !== undefined && (!Number.isInteger(max) || max <= 0)) {
    throw new EscaleError('Config', `'max connections' must be a positive integer, not '${maxText}'`, { key: 'max connections' });
  }
  return {
    scheme,
    host: target.host,
    port: target.port,
    directory: target.directory,
    user: target.user,
    password: target.password,
    verifySsl: target.verifySsl,
    sslVersion: target.sslVersion,
    certificate: target.certificate,
    keyfile: target.keyfile,
    caFile: target.options['ca file'],
    maxConnections: max,
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
    return openWebdavBackend(options, context.signal);
  },
};
