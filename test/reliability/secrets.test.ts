// Secrets: every command runs with a known password and passphrase (a key file, an inline key, FTP
// and WebDAV passwords for servers that are not there), and nothing it prints, logs, leaves on disk
// or shows as its process title contains them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { generateFernetKey } from '../../src/crypto/fernet.js';
import { configText, put, runEscale, runEscalectl, startEscale, waitFor, workspace, type RunResult } from '../e2e/harness.js';

const PASSWORD = 'Pw-7f3c9e1d-never-print-me';

/** A TCP port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The forms in which a secret could leak: as written, URL-encoded, base64. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')];
}

test('no command prints, logs, stores or shows in its process title the password or the passphrase', { timeout: 300_000 }, async () => {
  const ws = await workspace('escale-secrets-');
  try {
    const passphrase = generateFernetKey();
    const keyFile = join(ws.dir, 'shared.passphrase');
    await writeFile(keyFile, passphrase, { mode: 0o600 });
    const relay = join(ws.dir, 'relay');
    const port = await deadPort();
    const local = (name: string): Record<string, string> => ({ 'client name': name, 'local path': join(ws.dir, name), protocol: 'file', 'relay path': relay });
    const config = join(ws.dir, 'escale.conf');
    await writeFile(
      config,
      configText(
        { 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'logs', 'escale.log'), refresh: 2 },
        {
          alice: { ...local('alice'), mode: 'upload', encryption: 'fernet', passphrase: keyFile },
          // why: the same key written inline, the other way a passphrase can be given.
          bob: { ...local('bob'), mode: 'download', encryption: 'fernet', passphrase },
          ftpdead: { 'client name': 'f', 'local path': join(ws.dir, 'ftp'), protocol: 'ftp', 'host address': '127.0.0.1', port, user: 'me', password: PASSWORD },
          davdead: { 'client name': 'd', 'local path': join(ws.dir, 'dav'), 'host address': `http://127.0.0.1:${port}/dav`, user: 'me', password: PASSWORD },
          davurl: { 'client name': 'u', 'local path': join(ws.dir, 'davurl'), 'host address': `http://me:${PASSWORD}@127.0.0.1:${port}/dav` },
        },
      ),
    );
    for (const d of ['relay', 'alice', 'bob', 'ftp', 'dav', 'davurl']) await put(ws.dir, `${d}/.keep`, '');
    await put(ws.dir, 'alice/doc.txt', 'hello\n');
    const outputs: Array<[string, RunResult]> = [];
    const run = async (args: string[]): Promise<void> => {
      outputs.push([`escale ${args.join(' ')}`, await runEscale(['-c', config, ...args], { env: { ESCALE_DEBUG: '' }, timeoutMs: 60_000 })]);
    };
    await run(['--check']);
    await run(['--check', '--json']);
    await run(['--once', '-s', 'alice']);
    await run(['--once', '-s', 'bob', '-v']);
    await run(['--dry-run', '-s', 'alice', '-s', 'bob']);
    await run(['--dry-run', '--json', '-s', 'alice', '-s', 'bob']);
    // why: each failing login waits for its retries; the three relays are tried side by side.
    await Promise.all(
      ['ftpdead', 'davdead', 'davurl'].map(async (section) => {
        await run(['--once', '-s', section]);
        await run(['--once', '-s', section, '--debug', '-v']);
        await run(['--check', '-s', section]);
      }),
    );
    const maintenance = [
      ['status'], ['status', '--json'], ['access', '--list'], ['access', '--list', '--json'], ['access', join(ws.dir, 'alice', 'doc.txt')], ['--debug', 'access', '-r', 'ftpdead', '--list'],
      ['make-cache', '-r', 'alice'], ['clear-cache', '-r', 'bob'], ['list-pending'],
      ['fix', '--dry-run', '--json'], ['--debug', 'fix', '-r', 'ftpdead'], ['fix', '-r', 'davurl'],
      ['backup', 'alice', join(ws.dir, 'alice-backup.tar')], ['--debug', 'backup', 'ftpdead', join(ws.dir, 'ftp-backup.tar')],
      ['migrate', '--dry-run', '-r', 'davurl', `http://me:${PASSWORD}@127.0.0.1:${port}/other`], ['migrate', '-r', 'davdead', `http://127.0.0.1:${port}/other`],
      ['--debug', 'migrate', '-r', 'ftpdead', `ftp://me:${PASSWORD}@127.0.0.1:${port}/other`],
    ];
    for (const args of maintenance) outputs.push([`escalectl ${args.join(' ')}`, await runEscalectl(['-c', config, ...args])]);
    // why: the wizard on a configuration that holds passwords, then stopped by the end of its input.
    outputs.push(['escale -i', await runEscale(['-c', config, '-i'], { input: 'davurl\nn\n\n\n', timeoutMs: 60_000 })]);
    // why: the failing logins must really have been tried, or the test proves nothing.
    assert.ok(outputs.some(([cmd, r]) => cmd.includes('ftpdead') && cmd.includes('--once') && r.code === 1), 'the FTP client was started and failed');
    assert.ok(outputs.some(([cmd, r]) => cmd.includes('--once -s bob') && r.code === 0), 'the encrypted clients ran');

    // The process title of a running escale (and of its children, if any), and its status (failing logins included).
    const daemon = startEscale(['-c', config, '-s', 'alice', '-s', 'ftpdead', '-s', 'davurl']);
    const titles: string[] = [];
    try {
      await waitFor(async () => /connecting|running version/.test(daemon.output()), 20_000);
      assert.ok(await waitFor(async () => /failed to start client \[ftpdead\]/.test(daemon.output()) && /\[davurl\]: .*next attempt/.test(daemon.output()), 60_000), daemon.output());
      for (const args of [['status'], ['status', '--json']]) outputs.push([`escalectl ${args.join(' ')} (running)`, await runEscalectl(['-c', config, ...args])]);
      const status = outputs.at(-1)?.[1];
      assert.match(status?.stdout ?? '', /"section":"ftpdead".*"recentErrors":\[\{/, 'the status holds the failed logins');
      const pids = [daemon.child.pid as number];
      const children = await readFile(`/proc/${daemon.child.pid}/task/${daemon.child.pid}/children`, 'utf8').catch(() => '');
      pids.push(...children.split(/\s+/).filter(Boolean).map(Number));
      for (const pid of pids) titles.push((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' '));
    } finally {
      daemon.child.kill('SIGTERM');
      outputs.push(['escale (running, SIGTERM)', await daemon.exited]);
    }
    assert.ok(titles[0]?.includes('escale'), `read the process title: ${titles[0]}`);

    const hits: string[] = [];
    const look = (where: string, text: string): void => {
      for (const secret of [...forms(PASSWORD), ...forms(passphrase)]) if (text.includes(secret)) hits.push(`${where} contains a secret`);
    };
    for (const [cmd, result] of outputs) {
      look(`stdout of ${cmd}`, result.stdout);
      look(`stderr of ${cmd}`, result.stderr);
    }
    for (const title of titles) look('a process title', title);
    let filesRead = 0;
    for (const entry of await readdir(ws.dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const full = join(entry.parentPath, entry.name);
      // why: the configuration (and its backup) and the key file hold the secrets by design; nothing else may.
      if (full === config || full === `${config}.bak` || full === keyFile) continue;
      look(`file ${relative(ws.dir, full)}`, (await readFile(full)).toString('latin1'));
      filesRead += 1;
    }
    assert.ok(filesRead >= 3, 'log files, stores and relay files were searched');
    assert.ok(outputs.some(([, r]) => /\*\*\*/.test(r.stdout)), '--check shows secrets as ***');
    assert.deepEqual(hits, []);
  } finally {
    await ws.cleanup();
  }
});
