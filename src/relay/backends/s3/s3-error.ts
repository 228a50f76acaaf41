import { EscaleError, fromSystemError } from '../../../core/errors.js';

interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly Code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/** The HTTP status of an AWS SDK error, when it has one. */
export function httpStatusOf(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** Whether an SDK error says the key (or bucket) does not exist. */
export function isS3NotFound(error: unknown): boolean {
  const e = error as SdkError | undefined;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || httpStatusOf(error) === 404;
}

/**
 * Translates an AWS SDK v3 error (S3 error code, HTTP status, network errno) into the
 * catalogue. SDK messages never contain the secret access key; ours name the bucket and path.
 */
export function fromS3Error(error: unknown, path?: string, bucket?: string): EscaleError {
  if (error instanceof EscaleError) return error;
  const e = error as SdkError;
  const where = path === undefined ? {} : { path };
  const name = e?.name ?? e?.Code ?? '';
  const status = httpStatusOf(error);
  const text = typeof e?.message === 'string' && e.message !== '' ? e.message : name || String(error);
  const subject = path === undefined ? '' : ` ('${path}')`;
  if (name === 'AbortError' || (e as { code?: string })?.code === 'ABORT_ERR') return new EscaleError('Aborted', 'operation aborted', { ...where, cause: error });
  switch (name) {
    case 'NoSuchBucket':
      return new EscaleError('NotFound', `the S3 bucket '${bucket ?? '?'}' does not exist`, { ...where, cause: error, hint: 'create the bucket, or check the first folder of the relay directory (or the bucket option)' });
    case 'NoSuchKey':
    case 'NotFound':
      return new EscaleError('NotFound', `no such object in the S3 bucket${subject}`, { ...where, cause: error });
    case 'AccessDenied':
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'InvalidToken':
    case 'ExpiredToken':
    case 'AllAccessDisabled':
    case 'AccountProblem':
    case 'CredentialsProviderError':
      return new EscaleError('PermissionDenied', `the S3 server refused access${subject}: ${name} (check the access key id and secret, or the bucket policy)`, { ...where, cause: error });
    case 'PreconditionFailed':
    case 'ConditionalRequestConflict':
      return new EscaleError('AlreadyExists', `'${path ?? '?'}' exists already`, { ...where, cause: error });
    case 'InvalidBucketName':
      return new EscaleError('Config', `invalid S3 bucket name '${bucket ?? '?'}'`, { ...where, cause: error, key: 'bucket' });
    case 'KeyTooLongError':
      return new EscaleError('InvalidName', `the S3 key is too long${subject}`, { ...where, cause: error });
    case 'EntityTooLarge':
      return new EscaleError('QuotaExceeded', `the S3 server refused the size of${subject}`, { ...where, cause: error });
    case 'SlowDown':
    case 'ServiceUnavailable':
    case 'InternalError':
    case 'RequestTimeout':
    case 'RequestTimeTooSkewed':
    case 'TimeoutError':
    case 'RequestTimeoutException':
      return new EscaleError('Unavailable', `the S3 server is unavailable${subject}: ${name}`, { ...where, cause: error });
    case 'NotImplemented':
      return new EscaleError('Unsupported', `the S3 server does not implement this request${subject}`, { ...where, cause: error });
    default:
      break;
  }
  if (status !== undefined) {
    if (status === 404) return new EscaleError('NotFound', `not found on the S3 server${subject}`, { ...where, cause: error });
    if (status === 401 || status === 403) return new EscaleError('PermissionDenied', `the S3 server refused access${subject} (HTTP ${status})`, { ...where, cause: error });
    if (status === 412) return new EscaleError('AlreadyExists', `'${path ?? '?'}' exists already`, { ...where, cause: error });
    if (status >= 500 || status === 429 || status === 408) return new EscaleError('Unavailable', `the S3 server answered HTTP ${status}${subject}`, { ...where, cause: error });
  }
  const system = fromSystemError(error, path);
  if (system.code !== 'Internal') return system;
  if (/self[- ]signed|certificate|unable to verify/i.test(text)) {
    return new EscaleError('PermissionDenied', `the S3 server's TLS certificate is not trusted: ${text}`, { ...where, cause: error, hint: 'set verify ssl = no only for a test server you control' });
  }
  if (/socket hang up|ECONN|EPIPE|network|getaddrinfo/i.test(text)) return new EscaleError('Unavailable', `the S3 connection failed: ${text}`, { ...where, cause: error });
  return new EscaleError('Protocol', `unexpected S3 answer${subject}: ${name ? `${name}: ` : ''}${text}`, { ...where, cause: error });
}
