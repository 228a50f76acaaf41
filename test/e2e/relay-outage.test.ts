// End-to-end: a real FTP relay (proftpd) that is down when the daemon starts, then comes up, then
// goes down for several rounds and comes back. The daemon never exits: it backs off (one line per
// change of pause), shows it in `escalectl status --json`, and resumes by itself each time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusJson } from '../../src/daemon/status-model.js';
import { put, runEscalectl, startEscale, waitFor } from './harness.js';
import { PROFTPD_FTP, relayWorkspace, startServer } from './relay-servers-support.js';

test('a relay unreachable at start and then for several rounds: the daemon backs off, keeps running and resumes', { timeout: 300_000 }, async (t) => {
  const handle = await startServer(t, PROFTPD_FTP);
  if (handle === undefined) return;
  const ws = await relayWorkspace(handle, 'outage', { refresh: '1.0' });
  let daemon: ReturnType<typeof startEscale> | undefined;
  try {
    const alice = ws.folder('alice');
    const status = async (): Promise<StatusJson['clients'][number] | undefined> => {
      const result = await runEscalectl(['-c', ws.config, 'status', '--json']);
      return (JSON.parse(result.stdout) as StatusJson).clients.find((c) => c.section === 'alice');
    };
    const lines = (pattern: RegExp): string[] => (daemon?.output() ?? '').split('\n').filter((l) => pattern.test(l));

    // 1. the relay is down when the client starts: it retries with back-off instead of exiting
    await handle.kill();
    await put(alice, 'a.txt', 'a\n');
    daemon = startEscale(['-c', ws.config, '-s', 'alice']);
    assert.equal(await waitFor(async () => lines(/failed to start client \[alice\]: Unavailable: .*next attempt in 2 s/).length > 0, 90_000), true, daemon.output());
    const starting = await status();
    assert.equal(starting?.state, 'backing off');
    assert.ok((starting?.backoff?.failures ?? 0) >= 2, JSON.stringify(starting));
    assert.equal(daemon.child.exitCode, null, 'still running');
    await handle.restart();
    assert.equal(await waitFor(async () => existsSync(join(ws.relayDir, 'a.txt')), 90_000), true, `resumed after the relay came up:\n${daemon.output()}`);
    assert.equal(lines(/client \[alice\] started after \d+ failed attempt\(s\)/).length, 1);

    // 2. the relay goes away for several rounds
    await handle.kill();
    await put(alice, 'b.txt', 'b\n');
    assert.equal(await waitFor(async () => lines(/round failed \(Unavailable: .*\); next attempt in 4 s/).length > 0, 120_000), true, `three failed rounds:\n${daemon.output()}`);
    const away = await status();
    assert.equal(away?.state, 'backing off');
    assert.equal(away?.lastRound?.result, 'failed');
    assert.equal(away?.lastRound?.error?.code, 'Unavailable');
    assert.ok((away?.backoff?.failures ?? 0) >= 3);
    const pauses = lines(/round failed \(Unavailable/).map((l) => Number(/next attempt in ([\d.]+) s/.exec(l)?.[1]));
    assert.deepEqual(pauses.slice(0, 3), [1, 2, 4], 'the pause doubles');
    assert.ok(pauses.every((p, i) => i === 0 || p > (pauses[i - 1] as number)), `one line per change of pause, none repeated: ${pauses.join(', ')}`);
    assert.equal(daemon.child.exitCode, null, 'the daemon never exits because the relay is away');

    // 3. the relay returns: the next attempt sends the file
    await handle.restart();
    assert.equal(await waitFor(async () => existsSync(join(ws.relayDir, 'b.txt')), 90_000), true, `resumed:\n${daemon.output()}`);
    assert.equal(lines(/rounds work again after \d+ failed round\(s\)/).length, 1);
    assert.equal(await waitFor(async () => (await status())?.backoff === null, 30_000), true);
    assert.equal(lines(/CRITICAL|giving up/).length, 0);
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
    assert.equal(existsSync(join(ws.dir, 'escale.sock')), false, 'the control socket is removed on stop');
  } finally {
    daemon?.child.kill('SIGKILL');
    await ws.cleanup();
    await handle.stop();
  }
});
