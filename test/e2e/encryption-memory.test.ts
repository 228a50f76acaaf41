// End-to-end memory bound of encryption (issue 5): push and pull one big file with Fernet and
// measure the peak resident memory of each escale process. 256 MiB in the regular suite;
// `npm run test:memory` runs the 1 GiB (ESCALE_MEMORY_MIB=1024).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateKeyFile } from '../../src/local/key-file.js';
import { ESCALE_BIN, sha256File } from './harness.js';
import { encryptedSetup, fernetTokenLength } from './encryption-support.js';

const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env['ESCALE_MEMORY_MIB'] ?? 256);
const LIMIT_MIB = 200;

// why: getrusage's ru_maxrss of the escale process itself (what `/usr/bin/time -v` reports as
// "Maximum resident set size"), read at exit by a module preloaded with --import: exact, and no
// extra package or /proc polling needed.
const PEAK_REPORTER = `import { writeFileSync } from 'node:fs';
process.on('exit', () => writeFileSync(process.env.ESCALE_PEAK_FILE, String(process.resourceUsage().maxRSS * 1024)));
`;

interface Measured {
  code: number | null;
  stderr: string;
  peakBytes: number;
  seconds: number;
}

async function measured(args: string[], reporter: string, peakFile: string): Promise<Measured> {
  const started = Date.now();
  const result = await new Promise<{ code: number | null; stderr: string }>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(reporter).href, ESCALE_BIN, ...args], {
      env: { ...process.env, ESCALE_PEAK_FILE: peakFile },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stderr }));
  });
  return { ...result, peakBytes: Number(await readFile(peakFile, 'utf8')), seconds: (Date.now() - started) / 1000 };
}

/** A file of `size` bytes that is mostly a hole, with random MiBs at the start, middle and end. */
async function sparseFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(size);
    for (const at of [0, Math.floor(size / 2), size - MIB]) await handle.write(randomBytes(MIB), 0, MIB, at);
  } finally {
    await handle.close();
  }
}

test(`fernet: pushing and pulling ${SIZE_MIB} MiB keeps each process under ${LIMIT_MIB} MiB`, { timeout: 600_000 }, async () => {
  const s = await encryptedSetup({});
  try {
    const key = join(s.dir, 'key.passphrase');
    await generateKeyFile(key, 'fernet');
    await s.configure({ alice: { encryption: 'fernet', passphrase: key, mode: 'upload' }, bob: { encryption: 'fernet', passphrase: key, mode: 'download' } });
    const reporter = join(s.dir, 'peak-reporter.mjs');
    await writeFile(reporter, PEAK_REPORTER);
    const size = SIZE_MIB * MIB;
    const source = join(s.folder('alice'), 'big.bin');
    await sparseFile(source, size);

    const push = await measured(['--once', '-c', s.config, '--section', 'alice'], reporter, join(s.dir, 'peak-alice'));
    assert.equal(push.code, 0, push.stderr);
    assert.equal((await stat(join(s.relay, 'big.bin'))).size, fernetTokenLength(size), 'the whole token is on the relay');
    const pull = await measured(['--once', '-c', s.config, '--section', 'bob'], reporter, join(s.dir, 'peak-bob'));
    assert.equal(pull.code, 0, pull.stderr);

    const mib = (bytes: number): string => (bytes / MIB).toFixed(1);
    console.log(`memory: ${SIZE_MIB} MiB with fernet: push peak RSS ${mib(push.peakBytes)} MiB in ${push.seconds.toFixed(1)} s; pull peak RSS ${mib(pull.peakBytes)} MiB in ${pull.seconds.toFixed(1)} s`);
    assert.ok(push.peakBytes < LIMIT_MIB * MIB, `push peak RSS ${mib(push.peakBytes)} MiB`);
    assert.ok(pull.peakBytes < LIMIT_MIB * MIB, `pull peak RSS ${mib(pull.peakBytes)} MiB`);
    assert.equal(await sha256File(join(s.folder('bob'), 'big.bin')), await sha256File(source), 'bob has the same bytes');
  } finally {
    await s.cleanup();
  }
});
