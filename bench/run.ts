#!/usr/bin/env node
// `npm run bench`: runs the workloads (W1-W6) with their baselines in the same run, prints one
// table and the ratio lines per workload, and writes the results as JSON for later comparison.
// Options: --quick (smaller sizes, < 5 min), --smoke (tiny, for the test suite), --only W1,W3,
// --out <folder> (default bench/results), --profile <folder> (escale runs with --cpu-prof).
import { cpus, totalmem, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Scale } from './context.js';
import { formatWorkload, type WorkloadResult } from './report.js';
import { runW1 } from './workloads/w1-many-files.js';
import { runW2 } from './workloads/w2-big-file.js';
import { runW3 } from './workloads/w3-idle-round.js';
import { runW4 } from './workloads/w4-network-relays.js';
import { runW5 } from './workloads/w5-idle-minute.js';
import { runW6 } from './workloads/w6-latency.js';

/** The workloads by id, in the order they run. */
export const WORKLOADS: Record<string, (context: BenchContext) => Promise<WorkloadResult>> = { W1: runW1, W2: runW2, W3: runW3, W4: runW4, W5: runW5, W6: runW6 };

/** Parsed command line of the runner. */
export interface BenchArgs {
  scale: Scale;
  only: string[];
  out: string;
  profileDir?: string;
}

/** Parses the runner's arguments; throws on an unknown one. */
export function parseArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = { scale: 'full', only: Object.keys(WORKLOADS), out: resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/results') };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[i + 1];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      i += 1;
      return next;
    };
    if (arg === '--quick') args.scale = 'quick';
    else if (arg === '--smoke') args.scale = 'smoke';
    else if (arg === '--full') args.scale = 'full';
    else if (arg === '--only') args.only = value().split(',').map((w) => w.trim().toUpperCase()).filter(Boolean);
    else if (arg === '--out') args.out = resolve(value());
    else if (arg === '--profile') args.profileDir = resolve(value());
    else throw new Error(`unknown option ${arg}; use --quick, --smoke, --full, --only W1,W2, --out DIR, --profile DIR`);
  }
  const unknown = args.only.filter((w) => !(w in WORKLOADS));
  if (unknown.length > 0) throw new Error(`unknown workload ${unknown.join(', ')}; known: ${Object.keys(WORKLOADS).join(', ')}`);
  return args;
}

/** The machine a run was measured on. */
export function machine(): Record<string, string | number> {
  return { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', memoryMiB: Math.round(totalmem() / 1024 / 1024), node: process.version, platform: `${process.platform} ${process.arch}` };
}

/** Runs the selected workloads; prints tables on stdout and progress on stderr; returns the JSON document. */
export async function runBench(args: BenchArgs): Promise<Record<string, unknown>> {
  const started = new Date();
  console.log(`escale bench (${args.scale}) on ${Object.entries(machine()).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (args.profileDir) await mkdir(args.profileDir, { recursive: true });
  const results: Array<WorkloadResult | { id: string; error: string }> = [];
  for (const id of args.only) {
    const scratch = await mkdtemp(join(tmpdir(), `escale-bench-${id}-`));
    const context: BenchContext = { scale: args.scale, scratch, log: (line) => process.stderr.write(`${line}\n`), ...(args.profileDir ? { profileDir: args.profileDir } : {}) };
    const t0 = performance.now();
    try {
      const result = await (WORKLOADS[id] as (c: BenchContext) => Promise<WorkloadResult>)(context);
      results.push(result);
      console.log(`\n${formatWorkload(result)}  (${((performance.now() - t0) / 1000).toFixed(0)} s with set-up)`);
    } catch (error) {
      results.push({ id, error: String(error) });
      console.log(`\n${id}  FAILED: ${String(error)}`);
      process.exitCode = 1;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  const document = { startedAt: started.toISOString(), scale: args.scale, machine: machine(), loadAverage: (await loadAverage()) ?? null, results };
  await mkdir(args.out, { recursive: true });
  const name = `${started.toISOString().replace(/[:.]/g, '-')}-${args.scale}.json`;
  const text = `${JSON.stringify(document, null, 2)}\n`;
  await writeFile(join(args.out, name), text);
  await writeFile(join(args.out, 'latest.json'), text);
  console.log(`\nresults: ${join(args.out, name)}`);
  return document;
}

async function loadAverage(): Promise<number[] | undefined> {
  const { loadavg } = await import('node:os');
  return loadavg().map((v) => Math.round(v * 100) / 100);
}

// why: run only when executed as a program, not when imported by the smoke test.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await runBench(parseArgs(process.argv.slice(2)));
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  }
}
