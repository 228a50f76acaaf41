// escale daemons for the workloads that measure running clients (W5, W6): started in the
// foreground for one section each, measured through /proc while they run, stopped with SIGTERM.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { optionForKey } from '../src/config/schema.js';
import { ESCALE_BIN, writeConfig, type BenchContext } from './context.js';
import { sumSections, type RelayFigures, type StatsLine } from './measure.js';
import { countFiles } from './trees.js';

/** Clock ticks per second of /proc/PID/stat's times. */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Whether this build's configuration has a `watch` option (issue 14); W6 adds `watch = no` rows then. */
export function hasWatchOption(): boolean {
  return optionForKey('watch') !== undefined;
}

/** A running escale daemon (one section, foreground process). */
export interface Daemon {
  readonly name: string;
  readonly pid: number;
  /** User + system CPU seconds of the process and of its reaped children (bzip2) so far. */
  cpuSeconds(): Promise<number>;
  /** Peak resident memory so far (KiB). */
  peakRssKiB(): Promise<number>;
  /** Stops it (SIGTERM, SIGKILL after 30 s); returns its relay counters over its whole life. */
  stop(): Promise<{ code: number | null; relay?: RelayFigures; stderr: string }>;
}

let started = 0;

/** Starts `escale -c CONFIG --section SECTION` in the foreground, with relay counters. */
function startDaemon(context: BenchContext, name: string, config: string, section: string): Daemon {
  started += 1;
  const statsFile = join(context.scratch, `daemon-stats-${process.pid}-${started}.jsonl`);
  const child: ChildProcess = spawn(process.execPath, [ESCALE_BIN, '-q', '-c', config, '--section', section], {
    env: { ...process.env, ESCALE_STATS_FILE: statsFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: escale did not start`);
  return {
    name,
    pid,
    async cpuSeconds() {
      const text = await readFile(`/proc/${pid}/stat`, 'utf8');
      // why: the command name (field 2) may hold spaces; the fields after its ')' are fixed.
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
      return ((utime ?? 0) + (stime ?? 0) + (cutime ?? 0) + (cstime ?? 0)) / TICKS;
    },
    async peakRssKiB() {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      const line = (await readFile(statsFile, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).pop();
      if (line === undefined) return { code, stderr };
      return { code, stderr, relay: sumSections(JSON.parse(line) as StatsLine) };
    },
  };
}

/**
 * Starts one daemon per section, each with its own configuration file (so its own PID file),
 * cache folder and log file in `dir`, as on separate machines.
 */
export async function startDaemons(context: BenchContext, dir: string, sections: Record<string, Record<string, string | number>>): Promise<Daemon[]> {
  const daemons: Daemon[] = [];
  for (const [name, keys] of Object.entries(sections)) {
    const config = await writeConfig(dir, { 'cache dir': join(dir, `cache-${name}`), 'log file': join(dir, `${name}.log`) }, { [name]: keys }, `${name}.conf`);
    daemons.push(startDaemon(context, name, config, name));
  }
  return daemons;
}

/** Stops every daemon; throws when one did not exit cleanly (its last error lines in the message). */
export async function stopAll(daemons: readonly Daemon[]): Promise<Array<{ code: number | null; relay?: RelayFigures }>> {
  const results = await Promise.all(daemons.map((d) => d.stop()));
  results.forEach((result, i) => {
    if (result.code !== 0) throw new Error(`${daemons[i]?.name} exited with ${result.code}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  });
  return results;
}

/**
 * Waits until `folder` holds `count` files and `relay`'s tree (names, sizes, mtimes) has not
 * changed for `quietMs`; throws after `timeoutMs` or when a daemon has exited.
 */
export async function waitConverged(folder: string, count: number, relay: string | undefined, quietMs: number, timeoutMs: number, daemons: readonly Daemon[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let since = Date.now();
  for (;;) {
    for (const d of daemons) await stat(`/proc/${d.pid}`).catch(() => Promise.reject(new Error(`${d.name} stopped before converging`)));
    const got = await countFiles(folder);
    const tree = relay === undefined ? '' : await treeSignature(relay);
    if (tree !== last) {
      last = tree;
      since = Date.now();
    }
    if (got >= count && Date.now() - since >= quietMs) return;
    if (Date.now() > deadline) throw new Error(`not converged after ${Math.round(timeoutMs / 1000)} s: ${got} of ${count} files`);
    await sleep(250);
  }
}

/** Names, sizes and mtimes of every entry below `root` (hidden ones included), as one string. */
async function treeSignature(root: string): Promise<string> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  const parts: string[] = [];
  for (const entry of entries) {
    const full = join(entry.parentPath, entry.name);
    const info = await stat(full).catch(() => undefined);
    if (info) parts.push(`${full}:${info.size}:${info.mtimeMs}`);
  }
  return parts.sort().join('\n');
}
