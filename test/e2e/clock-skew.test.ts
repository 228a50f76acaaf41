// End-to-end: real escale processes whose clocks are 2 h ahead and 2 h behind (libfaketime,
// LD_PRELOAD) share a `file` relay with a client on the true clock. Upload temporaries of another
// client's put in progress are never deleted, locks are never broken early and are broken on time,
// all judged by the relay's clock; a record dated in the future names its pusher once.
//
// libfaketime and Node: `Date.now()` (clock_gettime CLOCK_REALTIME) is faked; file mtimes are not
// (the kernel stamps them, and Node's stat uses the statx system call, which libfaketime does not
// intercept), which is exactly a relay on a machine with the right clock. CLOCK_MONOTONIC would be
// faked too (as the real time plus the offset); FAKETIME_DONT_FAKE_MONOTONIC=1 keeps it true.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatLock } from '../../src/relay/protocol/lock.js';
import { formatMetadata } from '../../src/relay/protocol/placeholder.js';
import { put, runEscale, type RunResult } from './harness.js';
import { indexSetup, type IndexSetup } from './index-support.js';

const HOUR = 3600_000;
/** `lock timeout` of every client: 3 h, so that a 2 h skew decides both ways. */
const LOCK_TIMEOUT_SEC = 3 * 3600;
const SKEWS = { alice: undefined, bob: '+2h', carol: '-2h' } as const;
type Client = keyof typeof SKEWS;

/** The libfaketime library of this machine, or undefined. */
function libfaketime(): string | undefined {
  for (const base of ['/usr/lib', '/usr/local/lib', '/usr/lib64']) {
    const direct = join(base, 'faketime', 'libfaketime.so.1');
    if (existsSync(direct)) return direct;
    let subdirs: string[] = [];
    try {
      subdirs = readdirSync(base);
    } catch {
      continue;
    }
    for (const sub of subdirs) {
      const candidate = join(base, sub, 'faketime', 'libfaketime.so.1');
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

/** The library, or a loud skip (a failure under CI=true: `.ci/run` installs faketime). */
function needFaketime(t: TestContext): string | undefined {
  const lib = libfaketime();
  if (lib !== undefined) return lib;
  const why = 'libfaketime.so.1 not found (Debian package faketime)';
  if (process.env.CI === 'true') assert.fail(`clock-skew tests cannot run under CI=true: ${why}`);
  console.error(`SKIP clock skew: ${why}`);
  t.skip(why);
  return undefined;
}

/** A workspace whose three placeholder clients share one `file` relay (or index relays with `index`). */
async function skewSetup(extra: Record<string, string | number> = {}): Promise<IndexSetup> {
  // why: two pullers (the two other clients) before a file leaves the relay.
  const keys = { 'lock timeout': LOCK_TIMEOUT_SEC, 'puller count': 2, ...extra };
  return indexSetup({ alice: keys, bob: keys, carol: keys });
}

/** One `escale --once` round of `client`, under its skewed clock. */
async function once(s: IndexSetup, lib: string, client: Client, options: { allowFailure?: boolean; mode?: '--once' | '--dry-run' } = {}): Promise<RunResult & { output: string }> {
  const skew = SKEWS[client];
  const env = skew === undefined ? {} : { LD_PRELOAD: lib, FAKETIME: skew, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
  const result = await runEscale([options.mode ?? '--once', '-c', s.config, '--section', client], { env });
  const output = result.stdout + result.stderr;
  if (!options.allowFailure) assert.equal(result.code, 0, `escale --once [${client}] failed:\n${output}`);
  return { ...result, output };
}

/** Asserts that a skewed client noticed its own clock (so libfaketime really was in effect). */
function assertSawOwnSkew(client: Client, output: string): void {
  const word = SKEWS[client]?.startsWith('+') ? 'ahead' : 'behind';
  assert.match(output, new RegExp(`this machine's clock is about (11\\d min|2 h 0 min) ${word} of the relay's`), `${client} did not notice its clock:\n${output}`);
  assert.equal(output.split("this machine's clock is about").length - 1, 1, `${client} said it once:\n${output}`);
}

/** Sets a file's mtime to `ms` (the true clock). */
async function dateFile(path: string, ms: number): Promise<void> {
  await utimes(path, new Date(ms), new Date(ms));
}

test("upload temporaries: another client's put in progress survives clients 2 h ahead and behind; a left-over goes, with its age by the relay's clock", { timeout: 300_000 }, async (t) => {
  const lib = needFaketime(t);
  if (lib === undefined) return;
  const s = await skewSetup();
  // why: a put of another client in progress: its temporary keeps growing (and its mtime moving) while the clients run.
  const growing = join(s.relay, '.escale-put-00000000000000aa.tmp');
  await writeFile(growing, 'x');
  let writing = true;
  const grower = (async () => {
    while (writing) {
      await appendFile(growing, Buffer.alloc(4096, 1));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await put(s.folder('alice'), 'a.txt', 'from alice');
    await once(s, lib, 'alice');
    for (const client of ['bob', 'carol'] as const) {
      const leftover = join(s.relay, `.escale-put-${client === 'bob' ? 'b' : 'c'}${'0'.repeat(15)}.tmp`);
      await writeFile(leftover, 'a crashed put');
      await dateFile(leftover, Date.now() - 2 * HOUR);
      const relayBefore = readdirSync(s.relay).sort();
      await once(s, lib, client, { mode: '--dry-run' });
      assert.deepEqual(readdirSync(s.relay).sort(), relayBefore, `${client} --dry-run changed nothing on the relay (no clock probe, no removal)`);
      const before = (await stat(growing)).size;
      const run = await once(s, lib, client);
      assert.equal(existsSync(leftover), false, `${client} removed the left-over:\n${run.output}`);
      assert.match(run.output, new RegExp(`removed the upload temporary '${leftover.slice(s.relay.length + 1).replace(/\./g, '\\.')}' left by an interrupted put: it is (1 h 59|2 h 0) min old by the relay's clock`));
      assert.equal(existsSync(growing), true, `${client} deleted an upload in progress:\n${run.output}`);
      assert.doesNotMatch(run.output, /00000000000000aa/);
      assertSawOwnSkew(client, run.output);
      assert.equal(await readFile(join(s.folder(client), 'a.txt'), 'utf8'), 'from alice');
      const after = (await stat(growing)).size;
      assert.ok(after > before, 'the put in progress kept growing');
    }
  } finally {
    writing = false;
    await grower;
    await s.cleanup();
  }
});

test("owner-less locks: younger than `lock timeout` by the relay's clock they stay with clients 2 h ahead and behind; older ones are broken, with the evidence", { timeout: 300_000 }, async (t) => {
  const lib = needFaketime(t);
  if (lib === undefined) return;
  const s = await skewSetup();
  const lock = join(s.relay, '.x.txt.lock');
  const leaveAbandonedUpload = async (ageMs: number): Promise<void> => {
    await writeFile(join(s.relay, 'x.txt'), 'half of an upload');
    await writeFile(join(s.relay, '.x.txt.placeholder'), formatMetadata({ pusher: 'dave', timestamp: Math.floor(Date.now() / 1000) - 3 * 3600, pullers: [] }));
    await writeFile(lock, '');
    await dateFile(lock, Date.now() - ageMs);
  };
  try {
    // 2 h old by the relay's clock: younger than the 3 h timeout (bob's own clock says 4 h)
    await leaveAbandonedUpload(2 * HOUR);
    for (const client of ['bob', 'carol'] as const) {
      const run = await once(s, lib, client);
      assert.equal(existsSync(lock), true, `${client} broke a young lock:\n${run.output}`);
      assert.doesNotMatch(run.output, /breaking the owner-less lock/);
      assertSawOwnSkew(client, run.output);
    }
    // 4 h old by the relay's clock: carol's own clock says 2 h, bob's 6 h; both judge 4 h
    for (const client of ['carol', 'bob'] as const) {
      await leaveAbandonedUpload(4 * HOUR);
      const run = await once(s, lib, client);
      assert.equal(existsSync(lock), false, `${client} left an expired lock:\n${run.output}`);
      assert.match(run.output, /breaking the owner-less lock of 'x\.txt': it is 4 h 0 min old by the relay's clock \(lock timeout 10800 s\)/);
      assert.equal(existsSync(join(s.relay, 'x.txt')), false, 'the abandoned upload was rolled back');
    }
  } finally {
    await s.cleanup();
  }
});

test("index page locks: a foreign lock younger than `lock timeout` by the relay's clock holds against clients 2 h ahead and behind; an older one is broken", { timeout: 300_000 }, async (t) => {
  const lib = needFaketime(t);
  if (lib === undefined) return;
  const s = await skewSetup({ index: 1 });
  const lock = join(s.relay, '.0.lock');
  const daveLock = formatLock({ owner: 'dave', mode: 'w' });
  try {
    for (const client of ['bob', 'carol'] as const) await put(s.folder(client), `${client}.txt`, `from ${client}`);
    await writeFile(lock, daveLock);
    await dateFile(lock, Date.now() - 2 * HOUR);
    for (const client of ['bob', 'carol'] as const) {
      const run = await once(s, lib, client, { allowFailure: true });
      assert.equal(await readFile(lock, 'utf8'), daveLock, `${client} broke a young page lock:\n${run.output}`);
      assert.doesNotMatch(run.output, /breaking the stale lock/);
      assertSawOwnSkew(client, run.output);
    }
    await dateFile(lock, Date.now() - 4 * HOUR);
    const run = await once(s, lib, 'carol');
    assert.match(run.output, /breaking the stale lock of page '0' held by 'dave': it is 4 h 0 min old by the relay's clock \(lock timeout 10800 s\)/);
    assert.notEqual(existsSync(lock) ? await readFile(lock, 'utf8') : '', daveLock, "dave's lock is gone");
  } finally {
    await s.cleanup();
  }
});

test('a record dated in the future names its pusher once; a client whose own clock is behind accuses nobody else', { timeout: 300_000 }, async (t) => {
  const lib = needFaketime(t);
  if (lib === undefined) return;
  const s = await skewSetup();
  try {
    // files bob's machine (2 h ahead) wrote: their mtimes are 2 h in the future
    for (const name of ['f1.txt', 'f2.txt']) {
      await put(s.folder('bob'), name, `bob's ${name}`);
      await dateFile(join(s.folder('bob'), name), Date.now() + 2 * HOUR);
    }
    await put(s.folder('alice'), 'a.txt', 'from alice');
    await once(s, lib, 'bob');
    const alice = await once(s, lib, 'alice');
    const carol = await once(s, lib, 'carol');
    const ahead = /was pushed by '(\w+)' dated \S+, (11\d min|1 h 5\d min|2 h \d+ min) ahead of the relay's clock: the clock of '\w+' is probably ahead/g;
    for (const [who, run] of [['alice', alice], ['carol', carol]] as const) {
      const named = [...run.output.matchAll(ahead)].map((m) => m[1]);
      assert.deepEqual(named, ['bob'], `${who} warns about bob once and about nobody else:\n${run.output}`);
    }
    assertSawOwnSkew('carol', carol.output);
    for (const client of ['alice', 'carol'] as const) {
      for (const name of ['f1.txt', 'f2.txt']) assert.equal(await readFile(join(s.folder(client), name), 'utf8'), `bob's ${name}`, `${client} got ${name}`);
    }
    assert.equal(await readFile(join(s.folder('carol'), 'a.txt'), 'utf8'), 'from alice');
  } finally {
    await s.cleanup();
  }
});
