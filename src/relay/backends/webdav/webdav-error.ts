import { EscaleError, type ErrorCode } from '../../../core/errors.js';
import { redact } from '../../../core/redact.js';
import { CERTIFICATE_ERROR_CODES } from '../tls-options.js';

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** The catalogue code for an HTTP/WebDAV status. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'PermissionDenied';
  if (status === 404 || status === 410) return 'NotFound';
  if (status === 409) return 'NotFound'; // missing parent collection (RFC 4918, section 9.7.1)
  if (status === 412) return 'AlreadyExists'; // Overwrite: F or If-None-Match: * refused
  if (status === 507 || status === 413) return 'QuotaExceeded';
  if (status === 414) return 'InvalidName';
  if (status === 423 || status === 408 || status === 429 || status >= 500) return 'Unavailable';
  return 'Protocol';
}

/** The HTTP status carried by a `webdav` client error, if any. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Translates what the `webdav` client or the network threw into an EscaleError (the one
 * translation point of this backend). `secret` is scrubbed from the message.
 */
export function translateWebdavError(error: unknown, what: string, path: string | undefined, secret?: string): EscaleError {
  if (error instanceof EscaleError) return error;
  const where = path === undefined ? {} : { path };
  const err = error as NodeJS.ErrnoException & { type?: string };
  const message = redact(`${what}: ${err?.message ?? String(error)}`, secret ? [secret] : []);
  const status = statusOf(error);
  if (status !== undefined) {
    const code = codeForStatus(status);
    const hint = status === 401 ? 'check the user name and password' : undefined;
    return new EscaleError(code, message, { ...where, cause: error, ...(hint ? { hint } : {}) });
  }
  if (err?.name === 'AbortError' || err?.code === 'ABORT_ERR' || err?.type === 'aborted') {
    return new EscaleError('Aborted', message, { ...where, cause: error });
  }
  if (err?.code !== undefined && CERTIFICATE_ERROR_CODES.has(err.code)) {
    return new EscaleError('PermissionDenied', message, { ...where, cause: error, hint: "the server's TLS certificate is not trusted: give its CA ('ca file') or set 'verify ssl = no'" });
  }
  if (err?.code !== undefined && NETWORK_CODES.has(err.code)) return new EscaleError('Unavailable', message, { ...where, cause: error });
  if (err?.type === 'system' || err?.type === 'request-timeout' || err?.type === 'body-timeout') {
    return new EscaleError('Unavailable', message, { ...where, cause: error });
  }
  return new EscaleError('Protocol', message, { ...where, cause: error });
}
