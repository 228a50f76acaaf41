/**
 * `escalectl start`, `stop`, `restart` and `status`: the PID-file based control of a background
 * escale (configuration.md C11, with the original's defects fixed: the daemon owns its PID
 * file, `stop` checks that the PID is a live escale process and waits for it to finish). `status`
 * also asks the daemon for its status model on the control socket beside the PID file.
 */
import { spawn } from 'node:child_process';
import { unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { findConfigFile } from '../../config/load.js';
import { controlSocketPath, requestStatus } from '../../daemon/control-socket.js';
import { isEscaleProcess, pidFileOfConfig, readPidFile } from '../../daemon/pidfile.js';
import { STATUS_VERSION, type ClientStatusJson, type StatusJson } from '../../daemon/status-model.js';
import { isFailure } from '../../sync/failure-tracker.js';
import { EscaleError } from '../../core/errors.js';
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
  // why: a daemon that had to be killed could not remove them itself.
  await unlink(pidFile).catch(() => undefined);
  await unlink(controlSocketPath(pidFile)).catch(() => undefined);
  context.output.out(`escale stopped (pid ${pid})\n`);
  return EXIT.ok;
}

async function status(context: CommandContext, json: boolean): Promise<number> {
  const { pidFile, pid } = await running(context);
  let clients: ClientStatusJson[] = [];
  let unreachable: string | undefined;
  if (pid !== undefined) {
    try {
      clients = ((await requestStatus(controlSocketPath(pidFile))) as StatusJson).clients ?? [];
    } catch (error) {
      unreachable = error instanceof EscaleError ? error.message : String(error);
    }
  }
  if (json) {
    const report: StatusJson = { version: STATUS_VERSION, running: pid !== undefined, pid: pid ?? null, pidFile, clients };
    context.output.out(`${JSON.stringify(report)}\n`);
  } else {
    context.output.out(pid === undefined ? 'escale is not running\n' : `escale is running (pid ${pid})\n`);
    for (const client of clients) context.output.out(describeClient(client, new Date()));
  }
  if (unreachable !== undefined) context.output.err(`escalectl: warning: no details from the running escale: ${unreachable}\n`);
  return pid === undefined ? EXIT.failure : EXIT.ok;
}

/** The readable form of one client's status: a header, the round lines, then the failing files as a table. */
export function describeClient(client: ClientStatusJson, now: Date): string {
  const lines = [`[${client.section}] client ${client.client}${client.relay === null ? '' : `, relay ${client.relay}`}`];
  const at = (iso: string | null): string => (iso === null ? '-' : localTime(iso, now));
  lines.push(`  state        ${client.state} since ${at(client.stateSince)}${client.reason === null ? '' : `: ${client.reason}`}`);
  const round = client.lastRound;
  if (round !== null) {
    const outcome = round.result === 'failed' && round.error !== null ? `failed (${round.error.code}: ${round.error.message})` : round.result;
    lines.push(`  last round   ${at(round.start)} - ${at(round.end)}: ${outcome}; ${round.transferred} transferred, ${round.failed} failed, ${round.deferred} deferred`);
  }
  if (client.backoff !== null) lines.push(`  back-off     ${client.backoff.failures} failed attempt(s), pausing ${client.backoff.delaySec} s`);
  lines.push(`  next round   ${at(client.nextRound)}`);
  if (client.stuck.length === 0) lines.push('  failing      none');
  else {
    // why: the count `escale --once` exits 1 on; refused names and files that keep changing are shown, not counted.
    const failing = client.stuck.filter((f) => isFailure(f.state)).length;
    const others = client.stuck.length - failing;
    lines.push(`  failing      ${failing === 0 ? 'none' : failing}${others === 0 ? '' : ` (${others} more listed: refused or changing)`}`);
    const rows = client.stuck.map((f) => [`${f.kind === 'file' ? '' : `${f.kind} `}${f.path}`, f.state, String(f.failures), at(f.since), `${f.action}: ${f.code}: ${f.message}`]);
    lines.push(...table(['PATH', 'STATE', 'FAILURES', 'SINCE', 'CAUSE'], rows).map((row) => `    ${row}`));
  }
  if (client.recentErrors.length > 0) {
    lines.push(`  recent errors (last ${client.recentErrors.length})`);
    for (const e of client.recentErrors.slice(-5)) lines.push(`    ${at(e.time)} ${e.path === undefined ? '' : `'${e.path}' `}${e.code}: ${e.message}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Left-aligned columns, the last one unpadded. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
}

/** `HH:MM:SS` for today, `YYYY-MM-DD HH:MM:SS` otherwise, in local time. */
function localTime(iso: string, now: Date): string {
  const t = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const time = `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
  return t.toDateString() === now.toDateString() ? time : `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${time}`;
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
      .description('tell whether escale runs in the background on the configuration and what each client does (exit 0 if it runs, 1 if not)')
      .option('--json', 'print the status as JSON: {"version", "running", "pid", "pidFile", "clients"} (schema in the README)')
      .action((options: { json?: boolean }) => setExitCode(status(context(), options.json === true)));
  },
};
