#!/usr/bin/env node
/**
 * The `escalectl` command: maintenance subcommands on the clients of a configuration file
 * (configuration.md C11, C13). Each subcommand is a CommandModule in `src/cli/commands/`.
 */
import { Command } from 'commander';
import { environmentFlags } from '../config/load.js';
import type { CommandContext, CommandModule } from './command-module.js';
import { accessCommand } from './commands/access.js';
import { backupCommand } from './commands/backup.js';
import { clearCacheCommand, makeCacheCommand } from './commands/cache.js';
import { restartCommand, startCommand, statusCommand, stopCommand } from './commands/daemon-control.js';
import { fixCommand } from './commands/fix.js';
import { genkeyCommand } from './commands/genkey.js';
import { listPendingCommand } from './commands/list-pending.js';
import { migrateCommand } from './commands/migrate.js';
import { rebaseCommand } from './commands/rebase.js';
import { restoreCommand } from './commands/restore.js';
import { resumeCommand, suspendCommand } from './commands/suspend.js';
import { EXIT, configureCommander, isMainModule, packageVersion, processOutput, runMain, type Output } from './output.js';

/** The subcommands of `escalectl`, in the order `--help` lists them. */
export const COMMANDS: readonly CommandModule[] = [
  startCommand,
  stopCommand,
  restartCommand,
  statusCommand,
  accessCommand,
  genkeyCommand,
  suspendCommand,
  resumeCommand,
  makeCacheCommand,
  clearCacheCommand,
  listPendingCommand,
  fixCommand,
  migrateCommand,
  rebaseCommand,
  backupCommand,
  restoreCommand,
];

/** Options of `escalectl` that come before the subcommand. */
export interface EscalectlOptions {
  config?: string;
  acceptLicense?: boolean;
  debug?: boolean;
}

/** Runs `escalectl` with the given arguments (without node and script); returns the exit code. */
export async function escalectlMain(argv: string[], output: Output = processOutput): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = new Command('escalectl')
    .description('Maintenance commands for escale clients.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .option('-c, --config <file>', 'configuration file (default: the same lookup as escale)')
    .option('-y, --accept-license', 'accept the license without asking (kept for compatibility; nothing is asked)')
    .option('--debug', 'print stack traces of errors (also ESCALE_DEBUG=1)')
    .addHelpText('after', COMMANDS.length === 0 ? '\nNo subcommand is available in this build yet.\n' : '');
  configureCommander(program, 'escalectl', output);
  const context = (): CommandContext => {
    const options = program.opts<EscalectlOptions>();
    return { output, ...(options.config === undefined ? {} : { configFile: options.config }) };
  };
  // why: the callback returns nothing, so that an action written `(…) => setExitCode(…)` does not hand
  // the promise to commander, which would leave its rejection unhandled (a stack trace on a user error).
  const setExitCode = (code: Promise<number>): void => {
    pending = code;
  };
  for (const command of COMMANDS) command.register(program, context, setExitCode);
  if (COMMANDS.length === 0) program.allowExcessArguments(false);
  else {
    // why: with subcommands and no action of its own, commander answers a bare `escalectl` with
    // the help on stderr and an error; 0.7 prints the help and succeeds (configuration.md C11). Unknown names stay errors.
    program.usage('[options] [command]').helpCommand(true);
    program.argument('[command]').action((name: string | undefined) => {
      if (name !== undefined) program.error(`error: unknown command '${name}'`, { code: 'commander.unknownCommand', exitCode: EXIT.usage });
    });
  }
  program.parse(argv, { from: 'user' });
  if (pending !== undefined) return pending;
  // why: no subcommand prints the general help and succeeds, as in the original (configuration.md C11).
  program.outputHelp();
  return EXIT.ok;
}

if (isMainModule(import.meta.url)) {
  const argv = process.argv.slice(2);
  void runMain('escalectl', () => escalectlMain(argv), () => argv.includes('--debug') || environmentFlags().debug);
}
