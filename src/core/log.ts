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

/** A logger that sends every record at or above `threshold` to `sinks`. */
export function createLogger(sinks: LogSink[], name = 'escale', threshold: LogLevel = 'debug'): Logger {
  const emit = (level: LogLevel, message: string): void => {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[threshold]) return;
    const record: LogRecord = { time: new Date(), level, name, message };
    for (const sink of sinks) sink(record);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warning: (m) => emit('warning', m),
    error: (m) => emit('error', m),
    critical: (m) => emit('critical', m),
    child: (child) => createLogger(sinks, `${name}.${child}`, threshold),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger([]);

/** A sink that keeps records in an array (for tests). */
export function memorySink(records: LogRecord[]): LogSink {
  return (record) => records.push(record);
}
