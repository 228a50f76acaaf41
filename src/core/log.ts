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
