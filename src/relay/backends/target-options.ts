import { EscaleError } from '../../core/errors.js';
import type { RelayTarget } from './descriptor.js';

/**
 * Reads a backend-specific key (`max connections`, `timeout`, `part size`...) as a positive number;
 * undefined when absent or empty, a Config error naming the key otherwise.
 */
export function positiveNumberOption(target: RelayTarget, key: string, options: { integer?: boolean } = {}): number | undefined {
  const text = target.options[key];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (options.integer === true && !Number.isInteger(value))) {
    throw new EscaleError('Config', `'${key}' must be a positive ${options.integer === true ? 'integer' : 'number'}, not '${text}'`, { key });
  }
  return value;
}

/** The connection fields shared by the TLS-capable backends (FTP/FTPS, WebDAV), read from the target. */
export function tlsConnectionOf(target: RelayTarget) {
  return {
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
  };
}
