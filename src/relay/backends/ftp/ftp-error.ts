import { FTPError } from 'basic-ftp';
import { EscaleError, type ErrorCode } from '../../../core/errors.js';
import { redact } from '../../../core/redact.js';
import { CERTIFICATE_ERROR_CODES } from '../tls-options.js';

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

/** The catalogue code for an FTP reply code. */
export function codeForReply(reply: number): ErrorCode {
  switch (reply) {
    case 530: // not logged in
    case 532:
      return 'PermissionDenied';
    case 550: // file unavailable (missing, or refused: callers refine it)
    case 450:
      return 'NotFound';
    case 552: // exceeded storage allocation
    case 452: // insufficient storage space
      return 'QuotaExceeded';
    case 553: // file name not allowed
      return 'InvalidName';
    default:
      return 'Unavailable'; // 421, 425, 426, other 4xx and 5xx
  }
}

/**
 * Translates anything basic-ftp or a socket threw into an EscaleError (the one translation point
 * of this backend). `secret` is scrubbed from the message in case a server echoes it.
 */
export function translateFtpError(error: unknown, what: string, path: string | undefined, secret?: string): EscaleError {
  if (error instanceof EscaleError) return error;
  const where = path === undefined ? {} : { path };
  const scrub = (text: string): string => redact(text, secret ? [secret] : []);
  if (error instanceof FTPError) {
    return new EscaleError(codeForReply(error.code), scrub(`${what}: ${error.message}`), { ...where, cause: error });
  }
  const err = error as NodeJS.ErrnoException;
  const message = scrub(`${what}: ${err?.message ?? String(error)}`);
  if (err?.code !== undefined && CERTIFICATE_ERROR_CODES.has(err.code)) {
    return new EscaleError('PermissionDenied', message, { ...where, cause: error, hint: "the server's TLS certificate is not trusted: give its CA ('ca file') or set 'verify ssl = no'" });
  }
  if (err?.name === 'AbortError' || err?.code === 'ABORT_ERR') return new EscaleError('Aborted', message, { ...where, cause: error });
  if (err?.code !== undefined && NETWORK_CODES.has(err.code)) return new EscaleError('Unavailable', message, { ...where, cause: error });
  // why: basic-ftp reports drops and timeouts as plain Errors ("Timeout (control socket)",
  // "Server closed connection unexpectedly.", "Client is closed because ..."); all are transient.
  return new EscaleError('Unavailable', message, { ...where, cause: error });
}
