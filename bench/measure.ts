// Runs one command and measures it: wall time (monotonic clock in this process), CPU time and
// peak RSS (GNU time's getrusage of the child, `/usr/bin/time -f`), and, for escale processes,
// the relay counters written through ESCALE_STATS_FILE.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Where GNU time is expected; without it CPU and RSS come from escale's own report only. */
export const GNU_TIME = '/usr/bin/time';

/** Relay counters of one escale process (one line of ESCALE_STATS_FILE), summed over its sections. */
export interface RelayFigures {
  readonly requests: number;
  readonly calls: Record<string, number>;
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** What one measured process did. */
export interface ProcessFigures {
  readonly name: string;
  readonly wallMs: number;
  /** User plus system CPU time in milliseconds. */
  readonly cpuMs: number;
  readonly maxRssKiB: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Present for escale processes run with a stats file. */
  readonly relay?: RelayFigures;
}

/** Options of `measure`. */
export interface MeasureOptions {
  readonly env?: Record<string, string | undefined>;
  readonly cwd?: string;
  /** Scratch folder for the time and stats files. */
  readonly scratch: string;
  /** Sets ESCALE_STATS_FILE for the process and reads it back. */
  readonly escaleStats?: boolean;
  readonly timeoutMs?: number;
}

let counter = 0;

/** Runs `command args` to completion under GNU time (when installed) and returns its figures. */
export async function measure(name: string, command: string, args: string[], options: MeasureOptions): Promise<ProcessFigures> {
  counter += 1;
  const timeFile = join(options.scratch, `time-${process.pid}-${counter}.txt`);
  const statsFile = join(options.scratch, `stats-${process.pid}-${counter}.jsonl`);
  const useTime = existsSync(GNU_TIME);
  const argv = useTime ? ['-f', '%U %S %M', '-o', timeFile, command, ...args] : args;
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  for (const [key, value] of Object.entries(options.env ?? {})) if (value === undefined) delete env[key];
  if (options.escaleStats) env['ESCALE_STATS_FILE'] = statsFile;
  const started = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(useTime ? GNU_TIME : command, argv, { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-200_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 3_600_000);
    child.on('error', reject);
    child.on('close', (exit) => {
      clearTimeout(timer);
      resolve({ code: exit, stdout: out, stderr: err });
    });
  });
  const wallMs = performance.now() - started;
  let cpuMs = Number.NaN;
  let maxRssKiB = Number.NaN;
  if (useTime) {
    const line = (await readFile(timeFile, 'utf8').catch(() => '')).trim().split('\n').pop() ?? '';
    const [user, system, rss] = line.split(' ').map(Number);
    if (user !== undefined && system !== undefined && rss !== undefined) {
      cpuMs = (user + system) * 1000;
      maxRssKiB = rss;
    }
    await rm(timeFile, { force: true });
  }
  let relay: RelayFigures | undefined;
  if (options.escaleStats) {
    const text = await readFile(statsFile, 'utf8').catch(() => '');
    await rm(statsFile, { force: true });
    const line = text.trim().split('\n').filter(Boolean).pop();
    if (line !== undefined) {
      const parsed = JSON.parse(line) as StatsLine;
      relay = sumSections(parsed);
      if (!useTime) {
        cpuMs = parsed.cpuUserMs + parsed.cpuSystemMs;
        maxRssKiB = parsed.maxRssKiB;
      }
    }
  }
  return { name, wallMs, cpuMs, maxRssKiB, code, stdout, stderr, ...(relay ? { relay } : {}) };
}

/** One line of ESCALE_STATS_FILE as escale writes it at exit. */
export interface StatsLine {
  sections: Record<string, { calls: Record<string, number>; bytesRead: number; bytesWritten: number; requests: number }>;
  cpuUserMs: number;
  cpuSystemMs: number;
  maxRssKiB: number;
}

/** The relay figures of a stats line, summed over its sections. */
export function sumSections(line: StatsLine): RelayFigures {
  const calls: Record<string, number> = {};
  let requests = 0;
  let bytesRead = 0;
  let bytesWritten = 0;
  for (const section of Object.values(line.sections)) {
    requests += section.requests;
    bytesRead += section.bytesRead;
    bytesWritten += section.bytesWritten;
    for (const [method, n] of Object.entries(section.calls)) calls[method] = (calls[method] ?? 0) + n;
  }
  return { requests, calls, bytesRead, bytesWritten };
}

/** Adds relay figures (for the rounds of several processes). */
export function addRelay(a: RelayFigures | undefined, b: RelayFigures | undefined): RelayFigures | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const calls: Record<string, number> = { ...a.calls };
  for (const [method, n] of Object.entries(b.calls)) calls[method] = (calls[method] ?? 0) + n;
  return { requests: a.requests + b.requests, calls, bytesRead: a.bytesRead + b.bytesRead, bytesWritten: a.bytesWritten + b.bytesWritten };
}
