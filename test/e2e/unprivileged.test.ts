// End-to-end, as an unprivileged user (`nobody`): a synced file that was modified and made
// unreadable (chmod 000, as root) and an unreadable folder. Everything else syncs, the daemon keeps
// running over many rounds, `escalectl status --json` lists the stuck file with its cause, one
// ERROR is logged per state change, and once the permissions are fixed the file is cleared and sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { reportSkip } from '../conformance/servers/harness.js';
import type { StatusJson } from '../../src/daemon/status-model.js';
import { configText, runEscale, runEscalectl, startEscale, waitFor, type RunAs } from './harness.js';

/**
 * How escale runs without privileges here: as `nobody` (uid and gid from /etc/passwd) when nobody
 * can run the built escale; else (a checkout nobody cannot read, e.g. under /root) as root without
 * the two capabilities that bypass file permissions, which the kernel then checks like any owner's.
 * Undefined when the tests do not run as root.
 */
async function unprivileged(): Promise<{ as: RunAs; owner: { uid: number; gid: number }; how: string } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid !== undefined && gid !== undefined) {
    const nobody = { uid: Number(uid), gid: Number(gid) };
    if ((await runEscale(['--version'], { as: nobody, env: { HOME: '/tmp' } })).code === 0) return { as: nobody, owner: nobody, how: 'as nobody' };
  }
  return { as: { prefix: ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', '--'] }, owner: { uid: 0, gid: 0 }, how: 'as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (nobody cannot read this checkout)' };
}

test('as nobody: an unreadable modified file and an unreadable folder are stuck, everything else syncs, the daemon keeps running, status shows the cause, fixing the permissions clears them', { timeout: 240_000 }, async (t) => {
  const mode = await unprivileged();
  if (mode === undefined) {
    reportSkip('e2e unprivileged', 'needs root to run escale as nobody');
    t.skip('needs root');
    return;
  }
  const { as, owner } = mode;
  t.diagnostic(`escale runs ${mode.how}`);
  // why: mkdtemp makes a 0700 folder; nobody must be able to enter the workspace.
  const dir = await mkdtemp('/tmp/escale-unpriv-');
  await chmod(dir, 0o755);
  const relay = join(dir, 'relay');
  const alice = join(dir, 'alice');
  const bob = join(dir, 'bob');
  const config = join(dir, 'escale.conf');
  const log = join(dir, 'escale.log');
  const write = async (path: string, content: string, mtimeSec: number): Promise<void> => {
    const full = join(alice, path);
    await mkdir(join(full, '..'), { recursive: true });
    await writeFile(full, content);
    await utimes(full, mtimeSec, mtimeSec);
  };
  let daemon: ReturnType<typeof startEscale> | undefined;
  try {
    for (const folder of [relay, alice, bob, join(dir, 'cache')]) await mkdir(folder);
    const client = (name: string, mode: string) => ({ 'client name': name, 'local path': join(dir, name), protocol: 'file', 'relay path': relay, mode, checksum: 'yes' });
    await writeFile(config, configText({ 'cache dir': join(dir, 'cache'), 'log file': log, refresh: '1.0' }, { alice: client('alice', 'shared'), bob: client('bob', 'download') }));
    const t0 = Math.floor(Date.now() / 1000) - 3600;
    for (const name of ['a.txt', 'secret.txt', 'private/inside.txt', 'sub/b.txt']) await write(name, `${name} v1\n`, t0);
    for (const path of [dir, relay, alice, bob, join(dir, 'cache'), config, join(alice, 'private'), join(alice, 'sub'), ...['a.txt', 'secret.txt', 'private/inside.txt', 'sub/b.txt'].map((n) => join(alice, n))]) await chown(path, owner.uid, owner.gid);

    daemon = startEscale(['-c', config], { HOME: dir }, as);
    const has = async (path: string, content: string): Promise<boolean> => (await readFile(join(bob, path), 'utf8').catch(() => '')) === content;
    assert.equal(await waitFor(async () => (await has('secret.txt', 'secret.txt v1\n')) && (await has('private/inside.txt', 'private/inside.txt v1\n')), 60_000), true, `the first sync:\n${daemon.output()}`);

    // the field: a synced file modified and made unreadable, an unreadable folder, and ordinary work around them
    await write('secret.txt', 'secret.txt v2\n', t0 + 60);
    await chmod(join(alice, 'secret.txt'), 0o000);
    await write('private/later.txt', 'later\n', t0 + 60);
    await chown(join(alice, 'private/later.txt'), owner.uid, owner.gid);
    await chmod(join(alice, 'private'), 0o000);
    await write('a.txt', 'a.txt v2\n', t0 + 60);
    await write('c.txt', 'c.txt new\n', t0 + 60);
    for (const name of ['a.txt', 'c.txt']) await chown(join(alice, name), owner.uid, owner.gid);
    assert.equal(await waitFor(async () => (await has('a.txt', 'a.txt v2\n')) && (await has('c.txt', 'c.txt new\n')), 60_000), true, `everything else syncs:\n${daemon.output()}`);

    const status = async (): Promise<StatusJson> => {
      const result = await runEscalectl(['-c', config, 'status', '--json'], { as });
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout) as StatusJson;
    };
    let last: StatusJson | undefined;
    const stuck = await waitFor(async () => {
      last = await status();
      const entries = last.clients.find((c) => c.section === 'alice')?.stuck ?? [];
      return entries.some((e) => e.path === 'secret.txt' && e.state === 'stuck') && entries.some((e) => e.kind === 'folder' && e.path === 'private' && e.state === 'stuck');
    }, 90_000, 500);
    assert.equal(stuck, true, `status lists the stuck file and folder:\n${JSON.stringify(last, null, 2)}\n${daemon.output()}`);
    const aliceStatus = last?.clients.find((c) => c.section === 'alice');
    const secret = aliceStatus?.stuck.find((e) => e.path === 'secret.txt');
    assert.equal(secret?.code, 'PermissionDenied');
    assert.equal(secret?.kind, 'file');
    assert.match(secret?.message ?? '', /EACCES|permission denied/i);
    assert.ok((secret?.failures ?? 0) >= 3);
    assert.equal(aliceStatus?.stuck.find((e) => e.path === 'private')?.code, 'PermissionDenied');
    assert.equal(last?.version, 1);
    assert.equal(last?.running, true);
    assert.equal(last?.pid, daemon.child.pid);
    assert.equal(aliceStatus?.lastRound?.result, 'ok', 'a stuck file does not fail the rounds');
    assert.deepEqual(last?.clients.map((c) => c.section), ['alice', 'bob']);
    assert.deepEqual(last?.clients.find((c) => c.section === 'bob')?.stuck, []);
    assert.equal(daemon.child.exitCode, null, 'the daemon keeps running');
    const table = await runEscalectl(['-c', config, 'status'], { as });
    assert.match(table.stdout, /\[alice\] client alice, relay /);
    assert.match(table.stdout, /secret\.txt\s+stuck\s+\d+\s+\S+\s+read: PermissionDenied/);

    // several more rounds: the same problems are not logged again
    await new Promise((r) => setTimeout(r, 5000));
    const text = await readFile(log, 'utf8');
    const about = (pattern: RegExp): number => text.split('\n').filter((l) => / ERROR /.test(l) && pattern.test(l)).length;
    assert.equal(about(/'secret\.txt'/), 2, 'one ERROR when it starts failing, one when it is stuck');
    assert.equal(about(/folder 'private'/), 2);
    assert.equal(existsSync(join(bob, 'private/later.txt')), false);
    assert.equal(await readFile(join(bob, 'secret.txt'), 'utf8'), 'secret.txt v1\n', 'nothing was sent for the unreadable file');

    // the permissions are fixed while the daemon runs: both are cleared (with a line each) and sent
    await chmod(join(alice, 'secret.txt'), 0o644);
    await chmod(join(alice, 'private'), 0o755);
    assert.equal(await waitFor(async () => (await has('secret.txt', 'secret.txt v2\n')) && (await has('private/later.txt', 'later\n')), 60_000), true, `sent once readable:\n${daemon.output()}`);
    const cleared = await waitFor(async () => ((await status()).clients.find((c) => c.section === 'alice')?.stuck.length ?? 1) === 0, 30_000, 500);
    assert.equal(cleared, true, JSON.stringify(await status(), null, 2));
    const after = await readFile(log, 'utf8');
    assert.match(after, /INFO escale\.alice: file 'secret\.txt' is no longer failing \(it had failed \d+ time\(s\) to read: PermissionDenied\)/);
    assert.match(after, /INFO escale\.alice: folder 'private' is no longer failing/);

    const stopped = await runEscalectl(['-c', config, 'stop'], { as });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(existsSync(join(dir, 'escale.sock')), false, 'the control socket is removed');
    assert.equal(existsSync(join(dir, 'escale.pid')), false);
    assert.equal((await daemon.exited).code, 0, 'the daemon ended by stop exits 0');

    // --once: status 1 while a file cannot be read, 0 once it can
    await write('secret.txt', 'secret.txt v3\n', t0 + 120);
    await chmod(join(alice, 'secret.txt'), 0o000);
    const failing = await runEscale(['--once', '-c', config, '-s', 'alice'], { as, env: { HOME: dir } });
    assert.equal(failing.code, 1, `--once fails while a file cannot be read:\n${failing.stderr}`);
    assert.match(failing.stderr, /failed to read 'secret\.txt': PermissionDenied/);
    await chmod(join(alice, 'secret.txt'), 0o644);
    const ok = await runEscale(['--once', '-c', config, '-s', 'alice'], { as, env: { HOME: dir } });
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    daemon?.child.kill('SIGKILL');
    await chmod(join(alice, 'private'), 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});
