import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatRecord, levelFilter, type LogLevel, type LogSink } from '../core/log.js';
import { globalSecrets, type SecretRegistry } from '../core/redact.js';

/** Options of the rotating file sink (section 8.1 of the spec). */
export interface FileSinkOptions {
  /** The log file; its folder is created if needed. */
  path: string;
  /** Lowest level written (default debug). */
  level?: LogLevel;
  /** Number of rotated copies `.1` (newest) ... `.N` kept (default 3); 0 never rotates. */
  rotate?: number;
  /** Size in bytes that a write may not exceed before the file is rotated (default 1 MiB). */
  maxBytes?: number;
  /** Secrets scrubbed from every line (default the process-wide registry). */
  secrets?: SecretRegistry;
  /** Called once when a write fails (default: one line on stderr); later failures are silent. */
  onError?: (error: unknown) => void;
}

/** Default rotation size of the log file: 1 MiB. */
export const LOG_ROTATE_BYTES = 1024 * 1024;

/** How often (ms) an open log file is checked to still be the file at its path. */
const LOG_REOPEN_CHECK_MS = 1000;

/**
 * A sink that appends formatted lines to a file, rotating it like Python's RotatingFileHandler:
 * when a line would make the file exceed `maxBytes`, `.N-1` becomes `.N`, ..., the file becomes `.1`.
 * Writes are synchronous so that no line is lost when the process exits. The file stays open
 * between lines (why: opening and closing it per line cost more than the write, in rounds that
 * log each of many small files); at most once a second it is checked to still be the file at its
 * path, so that a file rotated or removed by another process is followed.
 */
export function fileSink(options: FileSinkOptions): LogSink {
  const { path } = options;
  const rotate = options.rotate ?? 3;
  const maxBytes = options.maxBytes ?? LOG_ROTATE_BYTES;
  const secrets = options.secrets ?? globalSecrets;
  let failed = false;
  const onError =
    options.onError ?? ((error: unknown) => void process.stderr.write(`escale: cannot write log file '${path}': ${String(error)}\n`));
  mkdirSync(dirname(path), { recursive: true });
  let size = currentSize(path);
  let fd: number | undefined;
  let checkedAt = 0;

  const close = (): void => {
    if (fd === undefined) return;
    const open = fd;
    fd = undefined;
    try {
      closeSync(open);
    } catch {
      // why: a close that fails loses nothing already written; the next line opens the file again.
    }
  };
  const openFile = (): number => {
    const now = Date.now();
    if (fd !== undefined && now - checkedAt < LOG_REOPEN_CHECK_MS) return fd;
    checkedAt = now;
    if (fd !== undefined) {
      const onDisk = statSync(path, { throwIfNoEntry: false });
      const mine = fstatSync(fd);
      if (onDisk !== undefined && onDisk.ino === mine.ino && onDisk.dev === mine.dev) return fd;
      close();
      size = onDisk?.size ?? 0;
    }
    fd = openSync(path, 'a', 0o600);
    return fd;
  };
  const rollOver = (): void => {
    close();
    for (let i = rotate - 1; i >= 1; i--) {
      try {
        renameSync(`${path}.${i}`, `${path}.${i + 1}`);
      } catch {
        // why: a missing older copy is normal until the log has rotated `rotate` times.
      }
    }
    rmSync(`${path}.1`, { force: true });
    renameSync(path, `${path}.1`);
    size = 0;
  };

  return levelFilter(options.level ?? 'debug', (record) => {
    const line = `${secrets.redact(formatRecord(record))}\n`;
    const bytes = Buffer.byteLength(line);
    try {
      if (rotate > 0 && size > 0 && size + bytes > maxBytes) rollOver();
      writeSync(openFile(), line);
      size += bytes;
    } catch (error) {
      close();
      if (!failed) onError(error);
      failed = true;
    }
  });
}

function currentSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
