/**
 * The closed catalogue of error codes. Every failure that crosses a module boundary is an
 * EscaleError carrying one of these codes; retry decisions read the code, never the message.
 */
export const ERROR_CODES = {
  /** The named file or folder does not exist. */
  NotFound: { retryable: false },
  /** The target already exists and the operation refuses to overwrite it. */
  AlreadyExists: { retryable: false },
  /** Authentication failed or the server/file system refused access. */
  PermissionDenied: { retryable: false },
  /** The storage is full or a quota was reached. From a relay call, the whole relay fails (see `failsWholeRelay`). */
  QuotaExceeded: { retryable: false, wholeRelay: true },
  /** A name that the storage or escale refuses (unsafe relative path, forbidden character). */
  InvalidName: { retryable: false },
  /** The backend cannot do this operation. */
  Unsupported: { retryable: false },
  /** Transient: network failure, connection reset, 5xx, timeout. Retry with back-off. From a relay call, the whole relay fails. */
  Unavailable: { retryable: true, wholeRelay: true },
  /** A lock on the relay is held by another client. Retry in a later round. */
  LockBusy: { retryable: true },
  /** The server answered something the client does not understand. */
  Protocol: { retryable: false },
  /** A relay record (lock, placeholder, index, archive) is malformed or hostile. */
  CorruptRecord: { retryable: false },
  /** Content failed an integrity check (checksum mismatch, HMAC failure, truncated data). */
  Integrity: { retryable: false },
  /** Wrong key or passphrase, or an unusable key file. */
  Crypto: { retryable: false },
  /** The configuration (file, key or value) is invalid. */
  Config: { retryable: false },
  /** The command line is invalid. */
  Usage: { retryable: false },
  /** The local disk is full. Retried once space returns. */
  DiskFull: { retryable: true },
  /** A local file changed while escale was working on it; the action is re-planned. */
  Conflict: { retryable: true },
  /** The operation was cancelled through its AbortSignal. */
  Aborted: { retryable: false },
  /** A bug: an invariant did not hold. */
  Internal: { retryable: false },
} as const satisfies Record<string, { retryable: boolean; wholeRelay?: true }>;

/** One of the catalogue's codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Where an error arose, when a decision depends on it: `relay` marks an error raised by a call to
 * the relay (a backend call, tagged by the daemon's relay wrapper), as opposed to a local file
 * operation. The same code means different things there: `Unavailable` from the relay is the network
 * or the server, from the local disk it is an I/O error of one file.
 */
export type ErrorScope = 'relay';

/** Context attached to an error: where it happened and what caused it. */
export interface ErrorDetails {
  /** Where the error arose (see ErrorScope); absent for local operations and unknown origins. */
  scope?: ErrorScope;
  /** Relay or local path concerned, if any. */
  path?: string;
  /** Configuration file, line and key for configuration errors. */
  file?: string;
  line?: number;
  key?: string;
  /** A hint that tells the user how to fix the problem. */
  hint?: string;
  /** The underlying error (never shown with its stack to users). */
  cause?: unknown;
}

/** The only error type escale throws across module boundaries. */
export class EscaleError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'EscaleError';
    this.code = code;
    this.details = details;
  }
}

/** Whether an error is worth retrying, judged by its code only. Unknown errors are not retried. */
export function isRetryable(error: unknown): boolean {
  return error instanceof EscaleError && ERROR_CODES[error.code].retryable;
}

/**
 * Whether `error` says that the relay as a whole fails (unreachable, overloaded, full), not one of
 * its files: a relay-scoped error whose code is marked `wholeRelay` in the catalogue. Such an error
 * fails the round (the client backs off); any other error of a per-file step fails only that file.
 */
export function failsWholeRelay(error: unknown): error is EscaleError {
  if (!(error instanceof EscaleError) || error.details.scope !== 'relay') return false;
  const entry: { readonly retryable: boolean; readonly wholeRelay?: true } = ERROR_CODES[error.code];
  return entry.wholeRelay === true;
}

/**
 * The same error marked as raised by a relay call (scope `relay`); an EscaleError already scoped is
 * returned as it is, anything that is not an EscaleError is returned unchanged.
 */
export function inRelayScope(error: unknown): unknown {
  if (!(error instanceof EscaleError) || error.details.scope !== undefined) return error;
  const scoped = new EscaleError(error.code, error.message, { ...error.details, scope: 'relay' });
  // why: the stack of the original call is the useful one for --debug.
  if (error.stack !== undefined) scoped.stack = error.stack;
  return scoped;
}

/** Whether `error` is an EscaleError with one of the given codes. */
export function hasCode(error: unknown, ...codes: ErrorCode[]): error is EscaleError {
  return error instanceof EscaleError && codes.includes(error.code);
}

/** Translates a Node.js system error (errno code) from a local file operation into the catalogue. */
export function fromSystemError(error: unknown, path?: string): EscaleError {
  if (error instanceof EscaleError) return error;
  const sys = error as NodeJS.ErrnoException;
  const where = path === undefined ? {} : { path };
  const message = sys?.message ?? String(error);
  switch (sys?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new EscaleError('NotFound', message, { ...where, cause: error });
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new EscaleError('AlreadyExists', message, { ...where, cause: error });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new EscaleError('PermissionDenied', message, { ...where, cause: error });
    case 'ENOSPC':
      return new EscaleError('DiskFull', message, { ...where, cause: error });
    case 'EDQUOT':
      return new EscaleError('QuotaExceeded', message, { ...where, cause: error });
    case 'ENAMETOOLONG':
    case 'EINVAL':
    case 'EILSEQ':
      return new EscaleError('InvalidName', message, { ...where, cause: error });
    case 'ABORT_ERR':
      return new EscaleError('Aborted', message, { ...where, cause: error });
    case 'ECONNRESET':
    case 'ECONNREFUSED':
    case 'ETIMEDOUT':
    case 'EPIPE':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
    case 'EIO':
    case 'EBUSY':
      return new EscaleError('Unavailable', message, { ...where, cause: error });
    default:
      if ((error as Error)?.name === 'AbortError') return new EscaleError('Aborted', message, { ...where, cause: error });
      return new EscaleError('Internal', message, { ...where, cause: error });
  }
}

/** Throws an Aborted EscaleError if the signal is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new EscaleError('Aborted', 'operation aborted', { cause: signal.reason });
}
