/**
 * `escalectl start`, `stop`, `restart` and `status`: the PID-file based control of a background
 * escale (cli-and-config §2.1–§2.3, with the original's defects fixed: the daemon owns its PID
 * file, `stop` checks that the PID is a live escale process and waits for it to finish).
 */
import { spawn } from 'node:child_process';
import { unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { findConfigFile } from '../../config/load.js';
import { isEscaleProcess, pidFileOfConfig, readPidFile } from '../../daemon/pidfile.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';

/** How long `stop` waits for the current transfer to finish or roll back before SIGKILL. */
const STOP_GRACE_MS = 60_000;

const ESCALE_SCRIPT = fileURLToPath(new URL('../escale.js', import.meta.url));

interface Running {
  pidFile: string;
  pid: number | undefined;
}

async function running(context: CommandContext): Promise<Running> {
  const pidFile = pidFileOfConfig(findConfigFile(context.configFile));
  const pid = await readPidFile(pidFile);
  return { pidFile, pid: pid !== undefined && isEscaleProcess(pid) ? pid : undefined };
}

/** Starts `escale -d` on the configuration and reports its outcome; returns the exit code. */
async function start(context: CommandContext): Promise<number> {
  const config = findConfigFile(context.configFile);
  const child = spawn(process.execPath, [ESCALE_SCRIPT, '-d', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => context.output.out(d.toString()));
  child.stderr.on('data', (d: Buffer) => context.output.err(d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (status) => resolve(status ?? EXIT.failure)));
  return code;
}

/** Stops the background escale of the configuration; 1 when it was not running. */
async function stop(context: CommandContext): Promise<number> {
  const { pidFile, pid } = await running(context);
  if (pid === undefined) {
    await unlink(pidFile).catch(() => undefined);
    context.output.err('escale is not running\n');
    return EXIT.failure;
  }
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + STOP_GRACE_MS;
  while (Date.now() < end && isEscaleProcess(pid)) await sleep(100);
  if (isEscaleProcess(pid)) {
    // why: a kill in the middle of a transfer is safe: the next start repairs it.
    process.kill(pid, 'SIGKILL');
    context.output.err(`escale (pid ${pid}) did not stop within ${STOP_GRACE_MS / 1000} s; killed it\n`);
  }
  await unlink(pidFile).catch(() => undefined);
  context.output.out(`escale stopped (pid ${pid})\n`);
  return EXIT.ok;
}

async function status(context: CommandContext, json: boolean): Promise<number> {
  const { pidFile, pid } = await running(context);
  if (json) context.output.out(`${JSON.stringify({ running: pid !== undefined, pid: pid ?? null, pidFile })}\n`);
  else context.output.out(pid === undefined ? 'escale is not running\n' : `escale is running (pid ${pid})\n`);
  return pid === undefined ? EXIT.failure : EXIT.ok;
}

/** A subcommand without arguments that runs `action` on the command context. */
function simpleCommand(name: string, description: string, action: (context: CommandContext) => Promise<number>): CommandModule {
  return {
    name,
    register(program: Command, context, setExitCode) {
      program
        .command(name)
        .description(description)
        .action(() => setExitCode(action(context())));
    },
  };
}

/** `escalectl start`. */
export const startCommand = simpleCommand('start', 'start escale in the background on the configuration (escale -d)', start);

/** `escalectl stop`. */
export const stopCommand = simpleCommand('stop', 'stop the background escale: it finishes or rolls back the current transfer and releases its locks', stop);

/** `escalectl restart`. */
export const restartCommand = simpleCommand('restart', 'stop the background escale (if running), then start it again', async (context) => {
  await stop(context);
  return start(context);
});

/** `escalectl status`. */
export const statusCommand: CommandModule = {
  name: 'status',
  register(program: Command, context, setExitCode) {
    program
      .command('status')
      .description('tell whether escale runs in the background on the configuration (exit 0 if so, 1 if not)')
      .option('--json', 'print {"running", "pid", "pidFile"} as JSON')
      .action((options: { json?: boolean }) => setExitCode(status(context(), options.json === true)));
  },
};
