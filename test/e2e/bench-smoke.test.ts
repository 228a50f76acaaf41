// Keeps the benchmark harness from rotting: runs the bench runner on tiny workloads and checks that
// it prints ratio lines and writes its JSON result file. Speed itself is never asserted here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workspace } from './harness.js';

const RUNNER = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/run.js');

test('bench runner: tiny W1 and W3 print their ratio and target lines and write JSON', async () => {
  const ws = await workspace('escale-bench-smoke-');
  try {
    const run = spawnSync(process.execPath, [RUNNER, '--smoke', '--only', 'W1,W3', '--out', ws.dir], { encoding: 'utf8', timeout: 240_000 });
    assert.equal(run.status, 0, `bench failed:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /^ {2}ratio W1 placeholder \/ rclone copy: \d+\.\d\d \(target ≤ 6: (met|NOT met)\)$/m);
    assert.match(run.stdout, /^ {2}escale placeholder \(relay on tmpfs\) +(\d+\.\d\d|not available: .+)/m);
    assert.match(run.stdout, /^ {2}check W3 idle round relay requests: \d+\.\d\d \(target ≤ 3: (met|NOT met)\)$/m);
    const document = JSON.parse(await readFile(join(ws.dir, 'latest.json'), 'utf8')) as { scale: string; results: Array<{ id: string; rows?: unknown[] }> };
    assert.equal(document.scale, 'smoke');
    assert.deepEqual(document.results.map((r) => r.id), ['W1', 'W3']);
    assert.ok(document.results.every((r) => Array.isArray(r.rows) && r.rows.length > 0));
  } finally {
    await ws.cleanup();
  }
});

test('bench runner: tiny W2, W5 and W6 (daemons) print their target lines', async () => {
  const ws = await workspace('escale-bench-smoke-');
  try {
    const run = spawnSync(process.execPath, [RUNNER, '--smoke', '--only', 'W2,W5,W6', '--out', ws.dir], { encoding: 'utf8', timeout: 240_000 });
    assert.equal(run.status, 0, `bench failed:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /^ {2}ratio W2 push throughput \/ cp \+ sha512sum: \d+\.\d\d \(target ≥ 0\.8: (met|NOT met)\)$/m);
    assert.match(run.stdout, /^ {2}check W5 placeholder alice CPU per minute idle: \d+\.\d\d s \(target ≤ 1 s: (met|NOT met)\)$/m);
    assert.match(run.stdout, /^ {2}check W5 index bob CPU per minute idle: \d+\.\d\d s/m);
    assert.match(run.stdout, /^ {2}check W6 file relay, .+: latency median of 2: \d+\.\d\d s$/m);
    assert.match(run.stdout, /^ {2}check W6 WebDAV \(rclone serve\), .+: latency max: \d+\.\d\d s$/m);
    const document = JSON.parse(await readFile(join(ws.dir, 'latest.json'), 'utf8')) as { results: Array<{ id: string; error?: string }> };
    assert.deepEqual(document.results.map((r) => [r.id, r.error]), [['W2', undefined], ['W5', undefined], ['W6', undefined]]);
  } finally {
    await ws.cleanup();
  }
});
