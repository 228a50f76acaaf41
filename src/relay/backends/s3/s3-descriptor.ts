import { EscaleError } from '../../../core/errors.js';
import type { Backend } from '../../backend.js';
import { positiveNumberOption } from '../target-options.js';
import type { BackendDescriptor, RelayTarget } from '../descriptor.js';
import type { S3BackendOptions } from './s3-backend.js';
import { S3RVER_QUIRKS } from './s3-quirks.js';

function flag(target: RelayTarget, key: string): boolean | undefined {
  const text = target.options[key];
  if (text === undefined) return undefined;
  if (/^(yes|true|on|1)$/i.test(text.trim())) return true;
  if (/^(no|false|off|0)$/i.test(text.trim())) return false;
  throw new EscaleError('Config', `'${key}' must be yes or no, not '${text}'`, { key });
}

/**
 * Maps a relay target to native S3 options. Endpoint: option `endpoint` (URL), else the host
 * address (a URL, or a host name with the address's scheme or the `scheme` option, default https,
 * and the port); no host means AWS.
 * Bucket: option `bucket`, else the first folder of the relay directory (the rest is the key
 * prefix). Other keys: `region` (us-east-1), `path style` (default yes with an endpoint, no on
 * AWS), `conditional writes` (If-None-Match; default yes on AWS only), `profile`,
 * `max connections`, `part size` (MiB), `s3 quirks = s3rver`.
 */
export function s3OptionsFrom(target: RelayTarget): S3BackendOptions {
  const o = target.options;
  let endpoint = o.endpoint;
  const host = target.host?.trim();
  if (endpoint === undefined && host !== undefined && host !== '') {
    endpoint = /^[a-z]+:\/\//i.test(host) ? host : `${target.scheme ?? o.scheme ?? 'https'}://${host}${target.port === undefined ? '' : `:${target.port}`}`;
  }
  const onAws = endpoint === undefined || /(^|\.)amazonaws\.com(:\d+)?(\/|$)/i.test(endpoint.replace(/^[a-z]+:\/\//i, ''));
  const segments = target.directory.split('/').filter((s) => s !== '');
  const bucket = o.bucket ?? segments.shift();
  if (bucket === undefined || bucket === '') {
    throw new EscaleError('Config', 's3 relay: no bucket: set the relay directory to bucket/prefix or the bucket option', { key: 'host directory' });
  }
  if ((target.user === undefined) !== (target.password === undefined)) {
    throw new EscaleError('Config', 's3 relay: give both user (access key id) and password (secret access key), or neither to use the AWS credential chain', { key: 'user' });
  }
  const number = (key: string): number | undefined => positiveNumberOption(target, key);
  const partSize = number('part size');
  const maxConnections = number('max connections');
  const quirks = o['s3 quirks'];
  if (quirks !== undefined && quirks.trim().toLowerCase() !== 's3rver') throw new EscaleError('Config', `'s3 quirks' knows only 's3rver', not '${quirks}'`, { key: 's3 quirks' });
  return {
    ...(endpoint !== undefined ? { endpoint } : {}),
    region: o.region ?? 'us-east-1',
    bucket,
    prefix: segments.join('/'),
    ...(target.user !== undefined && target.password !== undefined ? { credentials: { accessKeyId: target.user, secretAccessKey: target.password } } : {}),
    ...(o.profile !== undefined ? { profile: o.profile } : {}),
    forcePathStyle: flag(target, 'path style') ?? !onAws,
    ...(target.verifySsl !== undefined ? { verifySsl: target.verifySsl } : {}),
    conditionalWrites: flag(target, 'conditional writes') ?? onAws,
    ...(maxConnections !== undefined ? { maxConnections } : {}),
    ...(partSize !== undefined ? { partSize: partSize * 1024 * 1024 } : {}),
    ...(quirks !== undefined ? { quirks: S3RVER_QUIRKS } : {}),
  };
}

/** Registry entry for `s3`: an rclone remote name goes through rclone (escale 0.7 configs; the registry's rule), a host or AWS through the AWS SDK. */
export const s3Descriptor: BackendDescriptor = {
  name: 's3',
  aliases: [],
  describe: 'Amazon S3 or an S3-compatible server (native; an rclone remote name as address goes through rclone)',
  available: true,
  rcloneRemoteAddress: true,
  async open(target: RelayTarget): Promise<Backend> {
    const options = s3OptionsFrom(target);
    // why: loaded on first use: importing every network backend's client library cost each escale
    // process ~0.7 s of CPU at start, even with a `file` relay (W1).
    const { openS3Backend } = await import('./s3-backend.js');
    return openS3Backend(options);
  },
};
