// Worker of the configuration fuzzer: loads each text it is sent and answers how it ended, so that
// the main thread can time-box every file (a hang is caught by terminating the worker).
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigText } from '../../src/config/load.js';
import { EscaleError } from '../../src/core/errors.js';
import { SecretRegistry } from '../../src/core/redact.js';

/** What the worker answers for one configuration text. */
export interface FuzzVerdict {
  readonly id: number;
  readonly outcome: 'valid' | 'escale-error' | 'other-error';
  readonly code?: string;
  readonly message?: string;
  /** Whether the error names the configuration file (message or details). */
  readonly namesFile?: boolean;
  readonly clients?: number;
}

const { home } = workerData as { home: string };

parentPort?.on('message', ({ id, text, file }: { id: number; text: string; file: string }) => {
  let verdict: FuzzVerdict;
  try {
    const config = loadConfigText(text, file, { home, cwd: home, hostname: 'fuzz', secrets: new SecretRegistry() });
    verdict = { id, outcome: 'valid', clients: config.clients.length };
  } catch (error) {
    if (error instanceof EscaleError) {
      verdict = { id, outcome: 'escale-error', code: error.code, message: error.message, namesFile: error.message.includes(file) || error.details.file === file };
    } else {
      verdict = { id, outcome: 'other-error', message: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error) };
    }
  }
  parentPort?.postMessage(verdict);
});
