// End-to-end: real `escale` processes on the small things users trip on: file symbolic links, a
// configuration named after its local folder (escale's stores inside the synced folder), a `file`
// relay folder that does not exist yet, an S3 address with an http:// scheme, and files escale
// cannot read (configuration, key file, PID file) for a client that runs as an unprivileged user.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allPaths, configText, ESCALE_BIN, put, runEscale, runProcess, tree, workspace, type RunResult } from './harness.js';
import { relayWorkspace, roundsUntil, sameTrees, S3RVER_S3, startServer, type ServerKind } from './relay-servers-support.js';

async function once(config: string, section: string): Promise<RunResult> {
  const result = await runEscale(['--once', '-c', config, '--section', section]);
  assert.equal(result.code, 0, `escale --once [${section}] failed:\n${result.stderr}`);
  return result;
}

describe('local folders and the file relay', () => {
  let top: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir: top, cleanup } = await workspace('escale-e2e-small-')));
  after(() => cleanup());
  /** A fresh folder of the workspace for one test. */
  const area = async (name: string): Promise<string> => {
    const dir = join(top, name);
    await mkdir(dir);
    return dir;
  };

  test('file symbolic links are sent like folder links (followed, as 0.7); a dangling one is skipped with one warning; nothing "vanished"', async () => {
    const dir = await area('links');
    const relay = join(dir, 'relay');
    const sections: Record<string, Record<string, string | number>> = {};
    for (const name of ['alice', 'bob']) {
      await mkdir(join(dir, name), { recursive: true });
      sections[name] = { 'client name': name, 'local path': join(dir, name), protocol: 'file', 'relay path': relay };
    }
    const config = join(dir, 'links.conf');
    const log = join(dir, 'links.log');
    await writeFile(config, configText({ 'cache dir': join(dir, 'cache'), 'log file': log }, sections));
    await mkdir(relay);
    const alice = join(dir, 'alice');
    await put(dir, 'elsewhere/notes.txt', 'notes kept outside the folder\n', 1_700_000_000);
    await put(alice, 'real/data.txt', 'inner target\n', 1_700_000_100);
    await symlink(join(dir, 'elsewhere/notes.txt'), join(alice, 'notes.txt'));
    await symlink('real/data.txt', join(alice, 'alias.txt'));
    await symlink(join(dir, 'elsewhere'), join(alice, 'linked-folder'));
    await symlink('no/such/target', join(alice, 'dangling.txt'));
    for (let round = 0; round < 2; round++) await once(config, 'alice');
    await once(config, 'bob');
    const bob = await tree(join(dir, 'bob'));
    assert.deepEqual([...bob.keys()].sort(), ['alias.txt', 'linked-folder/notes.txt', 'notes.txt', 'real/data.txt']);
    assert.equal(await readFile(join(dir, 'bob', 'notes.txt'), 'utf8'), 'notes kept outside the folder\n');
    assert.equal(bob.get('notes.txt')?.mtimeSec, 1_700_000_000);
    const text = await readFile(log, 'utf8');
    assert.doesNotMatch(text, /vanished before it could be sent/);
    assert.equal(text.split('\n').filter((l) => l.includes("WARNING escale.alice: skipping 'dangling.txt': it is a symbolic link whose target does not exist")).length, 2, 'once per run (two processes)');
    // nothing changes on a further round: the links are not sent again
    const relayBefore = await allPaths(relay);
    const result = await once(config, 'alice');
    assert.deepEqual(await allPaths(relay), relayBefore);
    assert.doesNotMatch(result.stderr, /uploading/);
  });

  test("escale's own stores inside the synced folder: a configuration named after its local folder (alice.conf beside alice/) never syncs the checksum cache or a log kept there; a user file named like a store still syncs", async () => {
    const dir = await area('stores');
    const relay = join(dir, 'relay');
    await mkdir(relay);
    await mkdir(join(dir, 'alice'));
    await mkdir(join(dir, 'bob'));
    // why: no `cache dir`: the data folder of alice.conf is alice/ itself, the default of 0.7's layout.
    await writeFile(
      join(dir, 'alice.conf'),
      configText({ 'log file': join(dir, 'alice', 'escale.log') }, { alice: { 'client name': 'alice', 'local path': join(dir, 'alice'), protocol: 'file', 'relay path': relay } }),
    );
    await writeFile(join(dir, 'bob.conf'), configText({}, { bob: { 'client name': 'bob', 'local path': join(dir, 'bob'), protocol: 'file', 'relay path': relay } }));
    await put(join(dir, 'alice'), 'photo.jpg', 'jpeg bytes\n', 1_700_000_000);
    await put(join(dir, 'alice'), 'docs/cc-notes.txt', 'a user file whose name looks like a store\n', 1_700_000_100);
    // why: a file changed in the last 2 s is hashed but not cached (its ctime is too recent to trust).
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const first = await once(join(dir, 'alice.conf'), 'alice');
    assert.match(first.stderr, /escale's checksum cache '.*alice\/cc[0-9a-f]{56}' is inside the local folder/);
    // a second round, with the stores and the log now written in the folder
    const stores = (await readdir(join(dir, 'alice'))).filter((name) => /^(cc|am|rs|uf)[0-9a-f]{56}$/.test(name));
    assert.ok(stores.some((name) => name.startsWith('cc')), `the checksum cache is written in the local folder: ${stores.join(', ')}`);
    assert.ok(existsSync(join(dir, 'alice', 'escale.log')));
    await once(join(dir, 'alice.conf'), 'alice');
    const sent = (await allPaths(relay)).filter((p) => !p.startsWith('.') && !p.includes('/.'));
    assert.deepEqual(sent.sort(), ['docs', 'docs/cc-notes.txt', 'photo.jpg']);
    await once(join(dir, 'bob.conf'), 'bob');
    assert.deepEqual([...(await tree(join(dir, 'bob'))).keys()].sort().filter((p) => !/^(cc|am|rs|lr|bs|pc|uf)[0-9a-f]{56}$/.test(p)), ['docs/cc-notes.txt', 'photo.jpg']);
    assert.deepEqual([...(await tree(join(dir, 'bob'))).keys()].sort().filter((p) => p.endsWith('.log') || /^am[0-9a-f]{56}$/.test(p)), [], 'no foreign store or log arrived');
  });

  test('a file relay folder that does not exist is created with its parents, as 0.7 does, and said in the log; no raw ENOENT', async () => {
    const dir = await area('missing-relay');
    const relay = join(dir, 'not', 'yet', 'relay');
    await mkdir(join(dir, 'alice'));
    await put(join(dir, 'alice'), 'first.txt', 'first\n');
    const config = join(dir, 'escale.conf');
    await writeFile(config, configText({ 'cache dir': join(dir, 'cache'), 'log file': join(dir, 'escale.log') }, { alice: { 'local path': join(dir, 'alice'), protocol: 'file', 'relay path': relay } }));
    const result = await once(config, 'alice');
    assert.doesNotMatch(result.stderr, /ENOENT|realpath/);
    assert.match(result.stderr, new RegExp(`the relay folder '${relay}' did not exist; created '${join(dir, 'not')}', '${join(dir, 'not', 'yet')}', '${relay}'`));
    assert.ok(existsSync(join(relay, 'first.txt')));
  });
});

/** s3rver addressed with the scheme in `host address` (`http://127.0.0.1:PORT`) and no `scheme` key. */
const S3RVER_HTTP_URL: ServerKind = {
  ...S3RVER_S3,
  name: 's3rver s3 (http:// address)',
  relayKeys: (s, directory) => ({
    protocol: 's3', 'host address': `http://127.0.0.1:${s.port}`, 'relay directory': `${s.keys?.bucket ?? ''}/${directory}`, user: s.user, password: s.password, 's3 quirks': 's3rver',
  }),
};

describe('S3 with host address = http://127.0.0.1:PORT', () => {
  test('the http scheme of the address is honoured: alice → bob through s3rver', async (t) => {
    // why: AWS_CA_BUNDLE (set on this machine kind) is not wanted by a plain-HTTP endpoint either.
    delete process.env.AWS_CA_BUNDLE;
    const handle = await startServer(t, S3RVER_HTTP_URL);
    if (handle === undefined) return;
    const ws = await relayWorkspace(handle, 'relay/scheme');
    try {
      const check = await runEscale(['--check', '--json', '-c', ws.config]);
      assert.equal(check.code, 0, check.stderr);
      await put(ws.folder('alice'), 'over-http.txt', 'plain http endpoint\n', 1_700_000_000);
      await roundsUntil(ws, ['alice', 'bob'], () => sameTrees(ws.folder('alice'), ws.folder('bob')));
      assert.equal(await readFile(join(ws.folder('bob'), 'over-http.txt'), 'utf8'), 'plain http endpoint\n');
    } finally {
      await ws.cleanup();
      await handle.stop();
    }
  });
});

/** Runs `escale` (or `escalectl`) as the unprivileged user nobody. */
function runAsNobody(args: string[], bin = ESCALE_BIN): Promise<RunResult> {
  return runProcess('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin, ...args], { env: { HOME: '/nonexistent' } });
}

describe('files escale cannot read say so (an unprivileged user)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/tmp/escale-unpriv-');
    await chmod(dir, 0o755);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a configuration, a key file or a PID file it cannot read is reported with its cause, never as missing nor as "not running"', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to act as another user');
      return;
    }
    const closed = join(dir, 'closed');
    await mkdir(closed, { mode: 0o700 });
    await writeFile(join(closed, 'escale.conf'), '[a]\nlocal path = /tmp/a\nprotocol = file\nrelay path = /tmp/r\n');
    const hidden = await runAsNobody(['--check', '-c', join(closed, 'escale.conf')]);
    assert.equal(hidden.code, 2);
    assert.match(hidden.stderr, /cannot access '.*closed\/escale\.conf': EACCES: permission denied/);
    assert.doesNotMatch(hidden.stderr, /not found/);
    // a key file in a folder the user cannot enter
    await writeFile(join(closed, 'key.passphrase'), 'n5qI_sX--DTigK4_2K_3IQ4KeroCYxn-pqDs7vHvLQk=');
    const open = join(dir, 'open');
    await mkdir(open);
    await chmod(open, 0o777);
    const config = join(open, 'escale.conf');
    await writeFile(config, configText({ 'cache dir': join(open, 'cache'), 'log file': join(open, 'escale.log') }, { a: { 'local path': join(open, 'a'), protocol: 'file', 'relay path': join(open, 'relay'), encryption: 'fernet', passphrase: join(closed, 'key.passphrase') } }));
    await chmod(config, 0o644);
    const key = await runAsNobody(['--check', '-c', config]);
    assert.equal(key.code, 2);
    assert.match(key.stderr, /escale\.conf:\d+: \[a\] passphrase: cannot access '.*closed\/key\.passphrase': EACCES/);
    // a PID file another user's escale holds, unreadable to this one: the guard refuses instead of assuming nothing runs
    await writeFile(config, configText({ 'cache dir': join(open, 'cache'), 'log file': join(open, 'escale.log') }, { a: { 'local path': join(open, 'a'), protocol: 'file', 'relay path': join(open, 'relay') } }));
    await writeFile(join(open, 'escale.pid'), `${process.pid}\n`, { mode: 0o600 });
    const daemon = await runAsNobody(['-d', '-c', config]);
    assert.notEqual(daemon.code, 0);
    assert.match(daemon.stderr, /cannot read the PID file '.*escale\.pid', so whether escale is already running with this configuration is unknown: EACCES/);
    const ctl = await runAsNobody(['make-cache', '-c', config], join(ESCALE_BIN, '..', 'escalectl.js'));
    assert.notEqual(ctl.code, 0);
    assert.match(ctl.stderr, /cannot read the PID file/);
  });
});
