// End-to-end: `escale -d`, `escalectl start|status|stop|restart` and the PID file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configText, put, runEscale, waitFor, workspace, type RunResult } from './harness.js';

const ESCALECTL = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/escalectl.js');

function escalectl(args: string[]): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [ESCALECTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', rej);
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}

/** Whether `pid` runs (a zombie left unreaped by a container's init counts as ended). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // why: the state is the field after the parenthesised command name in /proc/<pid>/stat.
    return !/\)\s+Z\b/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('escalectl start runs escale in the background with a PID file; status, stop and restart control it', { timeout: 120_000 }, async () => {
  const ws = await workspace();
  try {
    const relay = join(ws.dir, 'relay');
    const alice = join(ws.dir, 'alice');
    await mkdir(relay);
    await mkdir(alice);
    const config = join(ws.dir, 'sync.conf');
    await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'sync.log'), refresh: 1 }, { alice: { 'client name': 'alice', 'local path': alice, protocol: 'file', 'relay path': relay, mode: 'upload' } }));
    await put(alice, 'hello.txt', 'hello\n');
    const pidFile = join(ws.dir, 'sync.pid');

    const started = await escalectl(['-c', config, 'start']);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /escale is running in the background \(pid \d+\)/);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.equal(alive(pid), true);
    assert.equal(await waitFor(async () => existsSync(join(relay, 'hello.txt')), 20_000), true, 'the background client synchronises');

    const status = await escalectl(['-c', config, 'status', '--json']);
    assert.equal(status.code, 0);
    const report = JSON.parse(status.stdout) as { version: number; running: boolean; pid: number; pidFile: string; clients: Array<{ section: string; client: string; state: string; stuck: unknown[] }> };
    assert.deepEqual({ version: report.version, running: report.running, pid: report.pid, pidFile: report.pidFile }, { version: 1, running: true, pid, pidFile });
    assert.deepEqual(report.clients.map((c) => [c.section, c.client, c.stuck]), [['alice', 'alice', []]]);
    assert.equal(statSync(join(ws.dir, 'sync.sock')).mode & 0o777, 0o600, 'the control socket is private');
    const table = await escalectl(['-c', config, 'status']);
    assert.match(table.stdout, /^escale is running \(pid \d+\)\n\[alice\] client alice, relay /);
    assert.match(table.stdout, /\n {2}failing {6}none\n/);

    const second = await runEscale(['-c', config]);
    assert.equal(second.code, 2, 'a second escale on the same configuration is refused');
    assert.match(second.stderr, /already running/);

    const again = await escalectl(['-c', config, 'start']);
    assert.notEqual(again.code, 0, 'start refuses while running');

    const restarted = await escalectl(['-c', config, 'restart']);
    assert.equal(restarted.code, 0, restarted.stderr);
    const newPid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.notEqual(newPid, pid);
    assert.equal(await waitFor(async () => !alive(pid), 5_000), true, 'the old process ended');

    const stopped = await escalectl(['-c', config, 'stop']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(await waitFor(async () => !alive(newPid), 5_000), true);
    assert.equal(existsSync(pidFile), false, 'the PID file is removed');
    assert.equal(existsSync(join(ws.dir, 'sync.sock')), false, 'the control socket is removed');
    assert.match(readFileSync(join(ws.dir, 'sync.log'), 'utf8'), /INFO escale.alice: uploading file 'hello.txt'/, 'the background run logs to the log file');

    const notRunning = await escalectl(['-c', config, 'stop']);
    assert.equal(notRunning.code, 1);
    assert.match(notRunning.stderr, /escale is not running/);
    const statusAfter = await escalectl(['-c', config, 'status']);
    assert.equal(statusAfter.code, 1);
    const jsonAfter = await escalectl(['-c', config, 'status', '--json']);
    assert.deepEqual(JSON.parse(jsonAfter.stdout), { version: 1, running: false, pid: null, pidFile, clients: [] });
  } finally {
    await ws.cleanup();
  }
});

test('a stale PID file (dead process) does not block a start', async () => {
  const ws = await workspace();
  try {
    const relay = join(ws.dir, 'relay');
    await mkdir(relay);
    const config = join(ws.dir, 'x.conf');
    await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'x.log') }, { a: { 'client name': 'a', 'local path': join(ws.dir, 'a'), protocol: 'file', 'relay path': relay } }));
    await writeFile(join(ws.dir, 'x.pid'), '999999\n');
    const result = await runEscale(['--once', '-c', config]);
    assert.equal(result.code, 0, result.stderr);
    const started = await escalectl(['-c', config, 'start']);
    assert.equal(started.code, 0, started.stderr);
    assert.equal((await escalectl(['-c', config, 'stop'])).code, 0);
  } finally {
    await ws.cleanup();
  }
});
