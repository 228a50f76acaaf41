// What every workload receives: its size preset, a scratch folder and the options of the run.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { measure, type ProcessFigures } from './measure.js';

/** Size presets: `smoke` for the test suite, `quick` for development, `full` as the issue asks. */
export type Scale = 'smoke' | 'quick' | 'full';

/** The run-wide settings a workload uses. */
export interface BenchContext {
  readonly scale: Scale;
  /** A fresh folder for this workload, removed afterwards. */
  readonly scratch: string;
  /** When set, escale processes write V8 CPU profiles (`--cpu-prof`) into this folder. */
  readonly profileDir?: string;
  /** Progress lines (stderr). */
  log(line: string): void;
}

/** Path of the built `escale` command (dist/src/cli/escale.js, next to dist/bench). */
export const ESCALE_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/escale.js');

/** Picks the value of the context's scale. */
export function byScale<T>(context: BenchContext, values: Record<Scale, T>): T {
  return values[context.scale];
}

/** Writes an escale configuration (`name` in `dir`): globals, then one `[section]` per client; returns its path. */
export async function writeConfig(dir: string, globals: Record<string, string | number>, sections: Record<string, Record<string, string | number>>, name = 'escale.conf'): Promise<string> {
  const lines = Object.entries({ 'cache dir': join(dir, 'cache'), 'log file': join(dir, 'escale.log'), ...globals }).map(([k, v]) => `${k} = ${v}`);
  for (const [name, keys] of Object.entries(sections)) lines.push('', `[${name}]`, ...Object.entries({ 'client name': name, ...keys }).map(([k, v]) => `${k} = ${v}`));
  const path = join(dir, name);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

/** Runs `escale --once` for one section, measured, with relay counters; throws when it fails. */
export async function escaleRound(context: BenchContext, name: string, config: string, section: string): Promise<ProcessFigures> {
  const node = context.profileDir ? ['--cpu-prof', '--cpu-prof-dir', context.profileDir, '--cpu-prof-name', `${name.replace(/[^A-Za-z0-9]+/g, '-')}-${Date.now()}.cpuprofile`] : [];
  const figures = await measure(name, process.execPath, [...node, ESCALE_BIN, '--once', '-q', '-c', config, '--section', section], { scratch: context.scratch, escaleStats: true });
  if (figures.code !== 0) throw new EscaleRunError(name, figures);
  return figures;
}

/** An escale round that exited with a failure status. */
export class EscaleRunError extends Error {
  constructor(
    readonly run: string,
    readonly figures: ProcessFigures,
  ) {
    super(`${run} failed (exit ${figures.code}): ${figures.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  }

  /** Whether escale refused because the feature is not in this build yet. */
  get notAvailable(): boolean {
    return /not available|Unsupported/i.test(this.figures.stderr);
  }
}

/** Runs a plain command (not measured) and throws when it fails. */
export function runPlain(command: string, args: string[], env: Record<string, string | undefined> = {}): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
    const child = spawn(command, args, { env: merged, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`${command} ${args.join(' ')} failed (${code}): ${err.trim()}`))));
  });
}

/** Pause after `sync` between two measured variants, by scale (milliseconds). */
const PAUSE_MS: Record<Scale, number> = { smoke: 0, quick: 2000, full: 5000 };

/**
 * Writes every dirty page out (`sync`) and pauses before the next measured variant, so that a
 * variant does not pay for the write-back or the CPU left over by the one before it.
 */
export async function betweenVariants(context: BenchContext): Promise<void> {
  await runPlain('sync', []);
  await sleep(PAUSE_MS[context.scale]);
}

/** Magic number of tmpfs in statfs(2)'s f_type. */
const TMPFS_MAGIC = 0x01021994;

/** A folder on tmpfs for control rows, and how it was obtained; `remove` undoes it. */
export type TmpfsFolder = { readonly path: string; readonly how: string; remove(): Promise<void> } | { readonly unavailable: string };

/**
 * A fresh folder on tmpfs: in /dev/shm when that is a tmpfs, else on a tmpfs mounted for the run
 * (root only); `unavailable` says why there is none.
 */
export async function tmpfsFolder(context: BenchContext, sizeMiB: number): Promise<TmpfsFolder> {
  const shm = await statfs('/dev/shm').catch(() => undefined);
  if (shm !== undefined && Number(shm.type) === TMPFS_MAGIC) {
    const path = await mkdtemp('/dev/shm/escale-bench-');
    return { path, how: '/dev/shm (tmpfs)', remove: () => rm(path, { recursive: true, force: true }) };
  }
  if (process.getuid?.() !== 0) return { unavailable: '/dev/shm is not a tmpfs and mounting one needs root' };
  const path = join(context.scratch, 'tmpfs');
  await mkdir(path, { recursive: true });
  try {
    await runPlain('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', path]);
  } catch (error) {
    return { unavailable: `mounting a tmpfs failed: ${String(error).slice(0, 160)}` };
  }
  return { path, how: `a tmpfs mounted on ${path} for the run`, remove: () => runPlain('umount', [path]) };
}

/**
 * A target stated by an issue for `fullCount` files, scaled linearly to the `count` files of this
 * run (the limit, and a label suffix saying so when scaled).
 */
export function scaledTarget(limit: number, count: number, fullCount: number): { limit: number; note: string } {
  if (count === fullCount) return { limit, note: '' };
  const scaled = (limit * count) / fullCount;
  return { limit: Math.round(scaled * 1000) / 1000, note: ` [target ${limit} at ${fullCount} files, scaled to ${count}]` };
}
