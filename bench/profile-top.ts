#!/usr/bin/env node
// Prints the top entries of V8 CPU profiles (`node --cpu-prof`, or `npm run bench -- --profile DIR`):
// self time per function and per file. Usage: node dist/bench/profile-top.js FILE.cpuprofile [N].
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** One line of the summary: a function (or file) and its self time in milliseconds. */
export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  readonly share: number;
}

/** Self time per function and per file of a CPU profile, largest first. */
export function summarize(profile: Profile): { totalMs: number; functions: ProfileEntry[]; files: ProfileEntry[] } {
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i += 1) {
    const id = samples[i] as number;
    // why: a sample's time is the delta to the next sample.
    selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i + 1] ?? 0));
  }
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url === '' ? '(native)' : url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/');
    const fn = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  const entries = (map: Map<string, number>): ProfileEntry[] =>
    [...map].map(([name, us]) => ({ name, selfMs: us / 1000, share: total > 0 ? us / total : 0 })).sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: total / 1000, functions: entries(byFunction), files: entries(byFile) };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, count] = process.argv.slice(2);
  if (file === undefined) {
    console.error('usage: profile-top FILE.cpuprofile [N]');
    process.exit(2);
  }
  const n = Number(count ?? 25);
  const summary = summarize(JSON.parse(await readFile(file, 'utf8')) as Profile);
  console.log(`${file}: ${summary.totalMs.toFixed(0)} ms sampled`);
  console.log('self time by function:');
  for (const e of summary.functions.slice(0, n)) console.log(`  ${e.selfMs.toFixed(0).padStart(7)} ms ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
  console.log('self time by file:');
  for (const e of summary.files.slice(0, Math.ceil(n / 2))) console.log(`  ${e.selfMs.toFixed(0).padStart(7)} ms ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
}
