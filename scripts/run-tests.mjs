#!/usr/bin/env node
// Runs the compiled test files with node's built-in runner. `--unit` leaves out the slow
// end-to-end and real-server suites; extra arguments filter test files by substring.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

let files = ['dist/src', 'dist/test'].flatMap((d) => { try { return walk(d); } catch { return []; } });
if (unitOnly) files = files.filter((f) => !f.includes('/e2e/') && !f.includes('/conformance/'));
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
files.sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// why: no single test may hang the run: a hang fails in minutes, not at CI's time limit. Not
// --test-force-exit: it once cut a file's last results off, unreported (orphaned server workers
// that kept a file alive are killed with their process group by the harness instead).
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=600000', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
