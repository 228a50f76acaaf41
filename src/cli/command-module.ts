/**
 * The shape of an `escalectl` subcommand. Each subcommand lives in `src/cli/commands/<name>.ts`,
 * exports one CommandModule, and is listed in `COMMANDS` of escalectl.ts.
 */
import type { Command } from 'commander';
import type { Output } from './output.js';

/** What every subcommand receives besides its own arguments. */
export interface CommandContext {
  /** `-c FILE` given before the subcommand, if any (else the default lookup applies). */
  configFile?: string;
  output: Output;
}

/** One `escalectl` subcommand. */
export interface CommandModule {
  /** Subcommand name as typed (`start`, `access`, ...). */
  readonly name: string;
  /**
   * Declares the subcommand on `program` (arguments, options, help). Its action must return the exit
   * code through `setExitCode` rather than exiting.
   */
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void;
}
