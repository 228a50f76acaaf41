import { EscaleError } from '../core/errors.js';
import type { LoadedConfig } from '../config/load.js';
import type { Logger } from '../core/log.js';
/** What `escale` asks the daemon to run. */
export interface RunRequest { config: LoadedConfig; once: boolean; dryRun: boolean; logger: Logger; sections?: string[] }
/** Runs every client of the configuration until a signal (or one round with `once`); returns the exit code. */
export async function runEscale(_request: RunRequest): Promise<number> { throw new EscaleError('Unsupported', 'synchronization is not available in this build yet'); }
