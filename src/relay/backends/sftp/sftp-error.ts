import { EscaleError, fromSystemError } from '../../../core/errors.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks). */
export const SFTP_STATUS = {
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** Whether an ssh2 error carries the given SFTP status code. */
export function hasSftpStatus(error: unknown, status: number): boolean {
  return (error as { code?: unknown } | undefined)?.code === status;
}

/**
 * Translates an ssh2 error (SFTP status, connection level or socket errno) into the catalogue.
 * Messages of ssh2 never contain the password; ours name only the path.
 */
export function fromSftpError(error: unknown, path?: string): EscaleError {
  if (error instanceof EscaleError) return error;
  const e = error as { code?: unknown; level?: unknown; message?: unknown; name?: unknown };
  const where = path === undefined ? {} : { path };
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const subject = path === undefined ? '' : ` ('${path}')`;
  if (e?.name === 'AbortError' || e?.code === 'ABORT_ERR') return new EscaleError('Aborted', 'operation aborted', { ...where, cause: error });
  if (typeof e?.code === 'number') {
    switch (e.code) {
      case SFTP_STATUS.NO_SUCH_FILE:
        return new EscaleError('NotFound', `no such file on the SFTP server${subject}`, { ...where, cause: error });
      case SFTP_STATUS.PERMISSION_DENIED:
        return new EscaleError('PermissionDenied', `the SFTP server refused access${subject}`, { ...where, cause: error });
      case SFTP_STATUS.OP_UNSUPPORTED:
        return new EscaleError('Unsupported', `the SFTP server does not support this operation${subject}`, { ...where, cause: error });
      case SFTP_STATUS.NO_CONNECTION:
      case SFTP_STATUS.CONNECTION_LOST:
        return new EscaleError('Unavailable', `the SFTP connection was lost${subject}`, { ...where, cause: error });
      case SFTP_STATUS.FAILURE:
        // why: SSH_FX_FAILURE is the catch-all; OpenSSH maps ENOSPC and EDQUOT to it with this text.
        if (/no space|quota/i.test(message)) return new EscaleError('QuotaExceeded', `the SFTP server is out of space${subject}`, { ...where, cause: error });
        return new EscaleError('Protocol', `the SFTP server reported a failure${subject}: ${message}`, { ...where, cause: error });
      default:
        return new EscaleError('Protocol', `unexpected SFTP status ${e.code}${subject}: ${message}`, { ...where, cause: error });
    }
  }
  switch (e?.level) {
    case 'client-authentication':
      return new EscaleError('PermissionDenied', 'the SSH server refused the login (wrong user name, password or key)', { ...where, cause: error });
    case 'client-timeout':
      return new EscaleError('Unavailable', 'timed out while connecting to the SSH server', { ...where, cause: error });
    case 'client-socket':
    case 'client-dns':
      return fromSystemError(error, path).code === 'Internal'
        ? new EscaleError('Unavailable', `the SSH connection failed: ${message}`, { ...where, cause: error })
        : fromSystemError(error, path);
    case 'protocol':
    case 'handshake':
      return new EscaleError('Protocol', `SSH protocol error: ${message}`, { ...where, cause: error });
    default:
      break;
  }
  if (/no response from server|not connected|connection lost|channel (is )?(not )?open|closed/i.test(message)) {
    return new EscaleError('Unavailable', `the SFTP connection was lost: ${message}`, { ...where, cause: error });
  }
  const translated = fromSystemError(error, path);
  return translated;
}
