import { EscaleError, type ErrorCode } from '../../../core/errors.js';
import { redact } from '../../../core/redact.js';

/** rclone's exit code for "temporary error (one that more retries might fix)". */
const EXIT_TEMPORARY = 5;

const RULES: ReadonlyArray<readonly [RegExp, ErrorCode]> = [
  [/didn't find section in config file|couldn't find (the )?(remote|section)|config file .* not found|unknown backend|NewFs: .*(not found|unknown)/i, 'Config'],
  [/directory not found|object not found|file not found|doesn't exist|does not exist|no such file|NoSuchKey|is a directory or/i, 'NotFound'],
  [/permission denied|access denied|AccessDenied|unable to authenticate|authentication failed|\b40[13]\b|forbidden|unauthori[sz]ed|InvalidAccessKeyId|SignatureDoesNotMatch|login incorrect|invalid_grant/i, 'PermissionDenied'],
  [/quota|insufficient storage|no space left|\b507\b|storage (is )?full/i, 'QuotaExceeded'],
  [/connection refused|timed? ?out|connection reset|no route to host|broken pipe|unexpected EOF|i\/o timeout|dial tcp|\b50[234]\b|\b429\b|too many requests|rate ?limit|temporar/i, 'Unavailable'],
];

/** The last meaningful line of rclone's stderr, without its timestamp and log level. */
export function lastRcloneLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\s+/, '').replace(/^(ERROR|NOTICE|INFO|DEBUG)\s*:\s*/, '').trim()).filter((l) => l !== '');
  const failed = [...lines].reverse().find((l) => l.startsWith('Failed to'));
  return failed ?? lines[lines.length - 1] ?? '';
}

/**
 * Translates a failed rclone run (exit code and stderr) into the catalogue: rclone reports
 * errors as text only, so its stderr is matched against known phrases. The message quotes
 * rclone's last line with every secret scrubbed.
 */
export function fromRcloneFailure(command: string, exitCode: number | null, stderr: string, secrets: readonly string[], path?: string): EscaleError {
  const line = redact(lastRcloneLine(stderr), secrets);
  const where = path === undefined ? {} : { path };
  let code: ErrorCode = exitCode === EXIT_TEMPORARY ? 'Unavailable' : 'Protocol';
  // why: exit 3 and 4 are "directory not found" and "file not found" (rclone docs, exit codes).
  if (exitCode === 3 || exitCode === 4) code = 'NotFound';
  else {
    for (const [pattern, mapped] of RULES) {
      if (pattern.test(line)) {
        code = mapped;
        break;
      }
    }
  }
  const subject = path === undefined ? '' : ` ('${path}')`;
  const hint = code === 'Config' ? { hint: "check the remote name with 'rclone listremotes', or set the 'rclone config' option" } : {};
  return new EscaleError(code, `rclone ${command} failed${subject}: ${line || `exit code ${exitCode}`}`, { ...where, ...hint });
}

/** An error answer of rclone's remote-control API. */
export interface RcFailure {
  /** rclone's error text. */
  readonly error: string;
  /** HTTP status rclone chose (404 for "not found" errors, 400 for bad parameters, 500 otherwise). */
  readonly status: number;
}

/**
 * Translates an rc error answer into the catalogue: status 404 is NotFound, anything else is
 * matched against the same phrases as stderr. Configuration errors name the remote (`display`,
 * which holds no secrets) since rclone's text does not; every secret is scrubbed.
 */
export function fromRcFailure(command: string, failure: RcFailure, secrets: readonly string[], display: string, path?: string): EscaleError {
  const line = redact(failure.error.replace(/\s+/g, ' ').trim(), secrets);
  const where = path === undefined ? {} : { path };
  let code: ErrorCode = failure.status === 404 ? 'NotFound' : failure.status === 401 ? 'Internal' : 'Protocol';
  if (code === 'Protocol') {
    for (const [pattern, mapped] of RULES) {
      if (pattern.test(line)) {
        code = mapped;
        break;
      }
    }
  }
  const subject = code === 'Config' ? ` (remote '${redact(display, secrets)}')` : path === undefined ? '' : ` ('${path}')`;
  const hint = code === 'Config' ? { hint: "check the remote name with 'rclone listremotes', or set the 'rclone config' option" } : {};
  return new EscaleError(code, `rclone ${command} failed${subject}: ${line || `status ${failure.status}`}`, { ...where, ...hint });
}
