import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { globalSecrets, type SecretRegistry } from './redact.js';

/** Severity levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';

/** Numeric order of the levels, for threshold comparisons. */
export const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };

/** Where log records go. Messages must already be free of secrets (see `redact`). */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  critical(message: string): void;
  /** A logger whose records carry `name` (for example the client section). */
  child(name: string): Logger;
}

/** One emitted record. */
export interface LogRecord {
  readonly time: Date;
  readonly level: LogLevel;
  readonly name: string;
  readonly message: string;
}

/** A destination for records (terminal, file, memory in tests). */
export type LogSink = (record: LogRecord) => void;

/** A logger that sends every record at or above `threshold` to `sinks`; `now` is the injected clock. */
export function createLogger(
  sinks: LogSink[],
  name = 'escale',
  threshold: LogLevel = 'debug',
  now: () => Date = () => new Date(),
): Logger {
  const emit = (level: LogLevel, message: string): void => {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[threshold]) return;
    const record: LogRecord = { time: now(), level, name, message };
    for (const sink of sinks) sink(record);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warning: (m) => emit('warning', m),
    error: (m) => emit('error', m),
    critical: (m) => emit('critical', m),
    child: (child) => createLogger(sinks, `${name}.${child}`, threshold, now),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger([]);

/** A sink that keeps records in an array (for tests). */
export function memorySink(records: LogRecord[]): LogSink {
  return (record) => records.push(record);
}

/** Parses a level name case-insensitively (`WARN` and `FATAL` accepted); undefined when unknown. */
export function parseLogLevel(text: string): LogLevel | undefined {
  const lower = text.trim().toLowerCase();
  if (lower === 'warn') return 'warning';
  if (lower === 'fatal') return 'critical';
  return lower in LEVEL_ORDER ? (lower as LogLevel) : undefined;
}

/** A sink that forwards only records at or above `level` to `sink`. */
export function levelFilter(level: LogLevel, sink: LogSink): LogSink {
  return (record) => {
    if (LEVEL_ORDER[record.level] >= LEVEL_ORDER[level]) sink(record);
  };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** Formats a record as `2026-11-25 21:53:19,123 INFO escale.alice: message` (local time). */
export function formatRecord(record: LogRecord): string {
  const t = record.time;
  const stamp =
    `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ` +
    `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())},${pad(t.getMilliseconds(), 3)}`;
  return `${stamp} ${record.level.toUpperCase()} ${record.name}: ${record.message}`;
}

/** Options of the terminal sink. */
export interface TerminalSinkOptions {
  /** Lowest level shown (default info; the CLI uses debug with `--verbose`, critical with `--quiet`). */
  level?: LogLevel;
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
  /** Secrets scrubbed from every line (default the process-wide registry). */
  secrets?: SecretRegistry;
}

/** A sink that prints formatted, secret-free lines to the terminal (stderr by default). */
export function terminalSink(options: TerminalSinkOptions = {}): LogSink {
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const secrets = options.secrets ?? globalSecrets;
  return levelFilter(options.level ?? 'info', (record) => write(`${secrets.redact(formatRecord(record))}\n`));
}

/** Options of the rotating file sink (configuration.md C10). */
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
