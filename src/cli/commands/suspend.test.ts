import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../core/log.js';
import { openClient } from '../../daemon/client.js';
import { formatLock, parseLock } from '../../relay/protocol/lock.js';
import { capture, workspace, type Workspace } from './command-test-kit.js';
import { runSuspend } from './suspend.js';

describe('escalectl suspend / resume', () => {
  let ws: Workspace;
  let relay: string;
  const lockFile = (page: string): string => join(relay, `.${page}.lock`);
  const ownerOf = (page: string): string | undefined => parseLock(readFileSync(lockFile(page))).owner;
  const foreignLock = (page: string, owner: string): void => writeFileSync(lockFile(page), formatLock({ owner, mode: 'w' }));

  before(() => {
    ws = workspace('suspend', {
      alice: { index: '1', refresh: '10' },
      plain: { 'relay path': 'plain-relay' },
    });
    relay = join(ws.dir, 'relay');
    writeFileSync(join(ws.dir, 'alice', 'a.txt'), 'alpha');
  });
  after(() => ws.remove());
  beforeEach(() => {
    for (const name of readdirSync(relay)) rmSync(join(relay, name), { recursive: true, force: true });
  });

  /** One round of alice's daemon client, as `escale --once` runs it. */
  const aliceRound = async (): Promise<{ transferred: number; deferred: number }> => {
    const opened = await openClient(await ws.client('alice'), { logger: silentLogger, once: true });
    try {
      return await opened.runner.round();
    } finally {
      await opened.close();
    }
  };

  test('suspend locks every page, so that a client postpones its transfers; resume lets them through', async () => {
    const suspended = await ws.run(['suspend']);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.match(suspended.stdout, /^skipping repository: plain \(not index-based/m, 'a placeholder section is skipped with the message');
    assert.match(suspended.stdout, /^in alice: page '0' locked$/m, 'page 0 of a one-page relay is locked even before its first push');
    assert.equal(ownerOf('0'), 'alice-suspend');

    const blocked = await aliceRound();
    assert.equal(blocked.transferred, 0);
    assert.ok(blocked.deferred > 0, 'the upload was postponed');
    assert.equal(existsSync(join(relay, '.0.index')), false, 'nothing was pushed');
    assert.equal(ownerOf('0'), 'alice-suspend', "the client left the suspend lock alone (it is not alice's own)");

    const resumed = await ws.run(['resume', '-r', 'alice']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(resumed.stdout, "in alice: page '0' unlocked\n");
    assert.equal(existsSync(lockFile('0')), false);
    assert.equal((await aliceRound()).transferred, 1, 'after resume the file is pushed');
  });

  test("resume removes only the suspend client's locks and reports the others", async () => {
    foreignLock('0', 'bob');
    foreignLock('photos', 'alice-suspend');
    foreignLock('music', 'alice');
    const resumed = await ws.run(['resume', '-r', 'alice']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /^in alice: page 'photos' unlocked$/m);
    assert.match(resumed.stdout, /^in alice: page '0' is locked by another client \('bob'\); left in place$/m);
    assert.match(resumed.stdout, /^in alice: page 'music' is locked by another client \('alice'\); left in place$/m, "the daemon's own lock is not the suspend lock");
    assert.equal(ownerOf('0'), 'bob');
    assert.equal(ownerOf('music'), 'alice');
    assert.equal(existsSync(lockFile('photos')), false);

    const again = await ws.run(['resume', '-r', 'alice', '-p', 'photos']);
    assert.equal(again.stdout, "in alice: page 'photos' is not locked\n");
    unlinkSync(lockFile('0'));
    unlinkSync(lockFile('music'));
    assert.equal((await ws.run(['resume'])).stdout, "skipping repository: plain (not index-based: set index = 1 or topdir)\nin alice: no page locked by 'alice-suspend'\n");
  });

  test('suspend waits for a page another client holds, pausing with the adaptive clock, then takes it', async () => {
    foreignLock('0', 'bob');
    const pauses: number[] = [];
    const output = capture();
    const code = await runSuspend({ repository: 'alice' }, { configFile: ws.configFile, output }, {
      sleep: async (ms) => {
        pauses.push(ms);
        // why: bob finishes his transaction while suspend waits.
        unlinkSync(lockFile('0'));
      },
    });
    assert.equal(code, 0, output.stderr);
    assert.deepEqual(pauses, [5000], 'one pause of refresh/2 (the adaptive clock starts at R/2)');
    assert.equal(output.stdout, "in alice: page '0' is locked by 'bob'; waiting (at most 600 s)\nin alice: page '0' locked\n");
    assert.equal(ownerOf('0'), 'alice-suspend');
  });

  test('--timeout gives up with status 1, keeping the locks taken and the foreign one', async () => {
    foreignLock('0', 'bob');
    let clock = Date.now();
    const pauses: number[] = [];
    const output = capture();
    const code = await runSuspend({ repository: 'alice', page: ['0', 'photos'], timeout: '60' }, { configFile: ws.configFile, output }, {
      now: () => clock,
      sleep: async (ms) => {
        pauses.push(ms);
        clock += ms;
      },
    });
    assert.equal(code, 1);
    assert.ok(pauses.length >= 2 && pauses.every((ms) => ms > 0), `it paused between polls: ${pauses.join(', ')}`);
    assert.equal(pauses.reduce((a, b) => a + b, 0), 60_000, 'the pauses end at the timeout');
    assert.match(output.stderr, /in alice: page '0' is still locked by 'bob' after 60 s; not suspended/);
    assert.match(output.stderr, /the 1 page\(s\) locked above stay locked/);
    assert.equal(ownerOf('0'), 'bob');
    assert.equal(ownerOf('photos'), 'alice-suspend');

    const once = await ws.run(['suspend', '-r', 'alice', '--timeout', '0']);
    assert.equal(once.code, 1, '--timeout 0 tries once');
    assert.match(once.stdout, /^in alice: page 'photos' locked$/m, 'suspending again is harmless: its own locks are rewritten');
  });

  test('usage errors: unknown or non-index section, bad page name, bad timeout; --help', async () => {
    const unknown = await ws.run(['suspend', '-r', 'carol']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no section \[carol\]/);
    const plain = await ws.run(['resume', '-r', 'plain']);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /resume: no section .* to work on \(\[plain\] not index-based/);
    const page = await ws.run(['suspend', '-p', 'a.b']);
    assert.equal(page.code, 2);
    assert.match(page.stderr, /invalid page name "a\.b": it contains '\.'/);
    const timeout = await ws.run(['suspend', '--timeout', 'soon']);
    assert.equal(timeout.code, 2);
    assert.match(timeout.stderr, /--timeout expects a number of seconds/);
    assert.equal(readdirSync(relay).length, 0, 'a usage error touches nothing');
    const help = await ws.run(['suspend', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--timeout <seconds>/);
    assert.match((await ws.run(['resume', '--help'])).stdout, /-p, --page <page>/);
  });
});
