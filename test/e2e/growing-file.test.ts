// End-to-end: a file that is written to all the time (a log) while a real escale daemon runs. Each
// read finds it changed, so it is never published torn: it is put off, and read again after a
// growing number of rounds (not every round), without an error. The user sees one INFO line when it
// starts, one WARNING once it kept changing 5 times, the file in `escalectl status --json` as
// `changing` (not counted as failing), the other files syncing meanwhile, and, once the writer
// stops, the file sent and one INFO line saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StatusJson } from '../../src/daemon/status-model.js';
import { fileRelayConfig, put, runEscalectl, startEscale, waitFor, workspace } from './harness.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

test('a file that keeps changing while it is read is put off with a back-off, reported once, shown as changing, and sent once it stops', { timeout: 300_000 }, async () => {
  const ws = await workspace('escale-growing-');
  const { config, log } = await fileRelayConfig(ws.dir, { alice: { mode: 'upload' }, bob: { mode: 'download' } }, { refresh: '1.0' });
  const growing = join(ws.dir, 'alice', 'app.log');
  // why: big enough that a read of it always overlaps an append.
  await writeFile(growing, randomBytes(12 * 1024 * 1024));
  let writing = true;
  const writer = (async () => {
    while (writing) {
      await appendFile(growing, `${new Date().toISOString()} one more line of the log\n`);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const daemon = startEscale(['-c', config]);
  const logText = (): Promise<string> => readFile(log, 'utf8').catch(() => '');
  const aliceStatus = async (): Promise<StatusJson['clients'][number] | undefined> => {
    const status = await runEscalectl(['-c', config, 'status', '--json']);
    return (JSON.parse(status.stdout) as StatusJson).clients.find((c) => c.section === 'alice');
  };
  try {
    await put(join(ws.dir, 'alice'), 'note.txt', 'an ordinary file');
    const warned = await waitFor(async () => /keeps changing while escale reads it/.test(await logText()), 180_000, 500);
    assert.ok(warned, `no warning that the file keeps changing:\n${await logText()}`);
    assert.equal(await readFile(join(ws.dir, 'bob', 'note.txt'), 'utf8'), 'an ordinary file', 'the other files sync meanwhile');
    const alice = await aliceStatus();
    assert.deepEqual(alice?.stuck.map((f) => [f.path, f.state, f.code]), [['app.log', 'changing', 'Conflict']], JSON.stringify(alice));
    assert.equal(alice?.failing, 0, 'a file that keeps changing is not a failure');
    const attempts = alice?.stuck[0]?.failures ?? 0;
    const rounds = (await logText()).split('\n').filter((line) => /escale\.alice: uploading file 'app\.log'/.test(line)).length;
    assert.ok(attempts >= 5 && rounds === attempts, `one read per attempt (${rounds} reads, ${attempts} attempts), and the attempts back off`);

    writing = false;
    await writer;
    const final = sha(await readFile(growing));
    const arrived = await waitFor(async () => sha(await readFile(join(ws.dir, 'bob', 'app.log')).catch(() => Buffer.alloc(0))) === final, 180_000, 500);
    assert.ok(arrived, `the file did not arrive once it stopped changing:\n${await logText()}`);
    assert.ok(await waitFor(async () => (await aliceStatus())?.stuck.length === 0, 30_000), 'cleared from the status');
    assert.equal(daemon.child.exitCode, null, 'the daemon runs on');
    const lines = (await logText()).split('\n').filter((line) => line.includes("'app.log'"));
    assert.equal(lines.filter((l) => / INFO .*changed while it was read to upload it/.test(l)).length, 1, lines.join('\n'));
    assert.equal(lines.filter((l) => / WARNING .*keeps changing/.test(l)).length, 1, lines.join('\n'));
    assert.equal(lines.filter((l) => / INFO .*could be read unchanged and sent/.test(l)).length, 1, lines.join('\n'));
    assert.deepEqual(lines.filter((l) => / (ERROR|CRITICAL) /.test(l)), []);
  } finally {
    writing = false;
    await writer;
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await ws.cleanup();
  }
});
