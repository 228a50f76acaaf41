/**
 * Printing, error reporting and exit codes shared by `escale` and `escalectl`. Every line that leaves
 * through here is scrubbed of registered secrets. Exit codes: 0 ok, 1 runtime failure, 2 usage or
 * configuration error.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommanderError, type Command } from 'commander';
import { EscaleError } from '../core/errors.js';
import { globalSecrets } from '../core/redact.js';

/** Exit codes of both commands. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Where a command writes; injectable for tests. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** The process's stdout and stderr, scrubbed of registered secrets. */
export const processOutput: Output = {
  out: (text) => void process.stdout.write(globalSecrets.redact(text)),
  err: (text) => void process.stderr.write(globalSecrets.redact(text)),
};

/** The exit code for an error: 2 for usage and configuration errors, 1 otherwise. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof EscaleError && (error.code === 'Config' || error.code === 'Usage')) return EXIT.usage;
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return EXIT.failure;
}

/**
 * Prints an error as `<program>: <message>` (one prefixed line per message line) and returns its
 * exit code. A stack trace is printed only when `debug` is set, or for errors that are not
 * EscaleErrors with a user-facing code (a bug), where it is still hidden unless `debug`.
 */
export function reportError(program: string, error: unknown, debug: boolean, output: Output = processOutput): number {
  const message = error instanceof Error ? error.message : String(error);
  for (const line of message.split('\n')) output.err(`${program}: ${line}\n`);
  if (error instanceof EscaleError && error.details.hint !== undefined && error.code !== 'Config') {
    output.err(`${program}: hint: ${error.details.hint}\n`);
  }
  if (debug && error instanceof Error && error.stack !== undefined) output.err(`${error.stack}\n`);
  else if (!(error instanceof EscaleError)) output.err(`${program}: (internal error; run with --debug or ESCALE_DEBUG=1 for details)\n`);
  return exitCodeFor(error);
}

/** The version from package.json (the installed package's own file). */
export function packageVersion(): string {
  try {
    // why: dist/src/cli/output.js -> the package root is three folders up.
    const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Makes commander report errors as `<program>: error: ...` and throw instead of exiting, so that the
 * caller decides the exit code (help and version give 0, usage errors 2).
 */
export function configureCommander(program: Command, name: string, output: Output = processOutput): Command {
  return program
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text),
      writeErr: (text) => output.err(text),
      outputError: (text, write) => write(`${name}: ${text.replace(/^error: /, '')}`),
    });
}

/** Runs a command's main function and turns its result or error into process.exitCode. */
export async function runMain(program: string, main: () => Promise<number>, debug: () => boolean, output: Output = processOutput): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed its message (or the help/version text).
      process.exitCode = exitCodeFor(error);
      return;
    }
    process.exitCode = reportError(program, error, debug(), output);
  }
}

/** Whether the module at `moduleUrl` is the script node was started with (also through a bin symlink). */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
