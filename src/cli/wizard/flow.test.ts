import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, nodeFileProbe } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { WizardAborted, type Prompter } from './ask.js';
import { applyPlan } from './apply.js';
import { runWizardFlow } from './flow.js';
import type { WizardEnv, WizardPlan } from './state.js';

const root = mkdtempSync(join(tmpdir(), 'escale-wizard-'));
after(() => rmSync(root, { recursive: true, force: true }));
const FINGERPRINT = `SHA256:${'x'.repeat(43)}`;
let counter = 0;

/** A fresh home with a configuration folder; every path the tests answer lives below it. */
function home(): { dir: string; config: string } {
  const dir = join(root, `h${counter++}`);
  mkdirSync(join(dir, 'cfg'), { recursive: true });
  return { dir, config: join(dir, 'cfg', 'escale.conf') };
}

/** A prompter that answers from a script and records what was asked and said. */
function scripted(answers: string[]): Prompter & { prompts: Array<{ prompt: string; secret: boolean }>; said: string[]; left: () => string[] } {
  const queue = [...answers];
  const prompts: Array<{ prompt: string; secret: boolean }> = [];
  const said: string[] = [];
  return {
    prompts,
    said,
    left: () => queue,
    ask: async (prompt, { secret }) => {
      prompts.push({ prompt, secret });
      return queue.shift();
    },
    say: (text) => void said.push(text),
  };
}

function env(h: { dir: string; config: string }): WizardEnv {
  return { configFile: h.config, cwd: h.dir, home: h.dir, hostname: 'testhost', fs: nodeFileProbe, findExecutable: () => '/usr/bin/rclone', rcloneRemotes: async () => ['myremote', 'dropbox'] };
}

/** Runs the flow on scripted answers (all must be used), writes the plan, and loads the result. */
async function wizard(h: { dir: string; config: string }, answers: string[], text = '', changes: Partial<WizardEnv> = {}): Promise<{ plan: WizardPlan; clients: ClientConfig[]; prompter: ReturnType<typeof scripted> }> {
  const prompter = scripted(answers);
  const prior = text === '' ? null : (() => {
    writeFileSync(h.config, text);
    const s = statSync(h.config);
    return { size: s.size, mtimeMs: s.mtimeMs };
  })();
  const plan = await runWizardFlow(prompter, { ...env(h), ...changes }, text, text === '');
  assert.deepEqual(prompter.left(), [], `unused answers; last prompts: ${prompter.prompts.slice(-3).map((p) => p.prompt).join(' | ')}`);
  await applyPlan(plan, prior);
  const loaded = await loadConfig(h.config, { home: h.dir, cwd: h.dir, hostname: 'testhost' });
  return { plan, clients: loaded.clients, prompter };
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('wizard, simplified mode', () => {
  it('Local disk: absolute relay folder (configuration.md U-15), folders created, a generated key that is never printed', async () => {
    const h = home();
    const { clients, plan, prompter } = await wizard(h, ['', 'local', '8', 'relay', '', '', '']);
    const c = clients[0] as ClientConfig;
    assert.equal(c.section, 'file');
    assert.equal(c.protocol, 'file');
    assert.equal(c.directory, join(h.dir, 'relay'));
    assert.equal(c.localPath, join(h.dir, 'local'));
    assert.equal(c.clientName, 'testhost');
    assert.equal(c.refreshSec, 10);
    assert.equal(c.diskQuotaBytes, 2 * 1024 ** 3);
    assert.equal(c.index.enabled, false);
    assert.equal(c.encryption.algorithm, 'fernet');
    assert.equal(c.encryption.passphraseFile, join(h.dir, 'cfg', 'file.passphrase'));
    assert.equal(mode(join(h.dir, 'cfg', 'file.passphrase')), 0o600);
    assert.ok(statSync(join(h.dir, 'relay')).isDirectory() && statSync(join(h.dir, 'local')).isDirectory());
    const key = readFileSync(join(h.dir, 'cfg', 'file.passphrase'), 'utf8');
    assert.ok(!prompter.said.some((line) => line.includes(key)), 'the key is never printed');
    assert.doesNotMatch(plan.text, /localhost/);
  });

  for (const [service, protocol] of [['4', 'ftp'], ['5', 'ftps']] as const) {
    it(`${protocol.toUpperCase()}: host and port, credentials in a 0600 file, no index`, async () => {
      const h = home();
      const { clients, prompter } = await wizard(h, ['', 'l', service, 'ftp.example.org:2121', '', 'alice', ' p%ss:w0rd', 'n']);
      const c = clients[0] as ClientConfig;
      assert.deepEqual([c.section, c.protocol, c.host, c.port, c.directory], [protocol, protocol, 'ftp.example.org', 2121, 'Escale Repository']);
      assert.deepEqual([c.user, c.password], ['alice', ' p%ss:w0rd']);
      assert.equal(c.credentialFile, join(h.dir, 'cfg', `${protocol}.credential`));
      assert.equal(mode(c.credentialFile as string), 0o600);
      assert.equal(c.index.enabled, false);
      assert.equal(c.encryption.algorithm, null);
      assert.equal(prompter.prompts.find((p) => p.prompt.startsWith('Password for'))?.secret, true);
      assert.equal(prompter.prompts.find((p) => p.prompt.startsWith('Password for'))?.prompt, "Password for 'alice@ftp.example.org:2121' (required): ");
    });
  }

  it('WebDAV: a URL sets http(s), the path joins the relay folder; index on', async () => {
    const h = home();
    const { clients } = await wizard(h, ['', 'l', '13', 'http://dav.example.org:8080/remote.php/dav', 'escale', 'bob', 'pw', 'n']);
    const c = clients[0] as ClientConfig;
    assert.deepEqual([c.section, c.protocol, c.host, c.port, c.directory], ['https', 'http', 'dav.example.org', 8080, 'remote.php/dav/escale']);
    assert.deepEqual([c.user, c.password], ['bob', 'pw']);
    assert.deepEqual(c.index, { enabled: true, pages: 'single' });
    assert.equal(c.maxPageSizeBytes, 200 * 1024 * 1024);
  });

  it('SFTP: native backend with a private key and a host key fingerprint', async () => {
    const h = home();
    mkdirSync(join(h.dir, '.ssh'));
    writeFileSync(join(h.dir, '.ssh', 'id_ed25519'), 'key');
    const { clients } = await wizard(h, ['', 'l', '12', 'sftp.example.org:2222', 'backup', 'bob', '', '', FINGERPRINT, 'n']);
    const c = clients[0] as ClientConfig;
    assert.deepEqual([c.protocol, c.host, c.port, c.directory, c.user, c.password], ['sftp', 'sftp.example.org', 2222, 'backup', 'bob', undefined]);
    assert.equal(c.keyfile, join(h.dir, '.ssh', 'id_ed25519'));
    assert.equal(c.extra['host key'], FINGERPRINT);
  });

  it('S3: endpoint, bucket and folder, access keys in a credential file', async () => {
    const h = home();
    const { clients } = await wizard(h, ['', 'l', '1', 'http://localhost:9000', 'Bad_Bucket', 'my-bucket', '', 'AKIAEXAMPLE', 'se/cr+et', 'n']);
    const c = clients[0] as ClientConfig;
    assert.deepEqual([c.protocol, c.host, c.directory, c.user, c.password], ['s3', undefined, 'my-bucket/escale', 'AKIAEXAMPLE', 'se/cr+et']);
    assert.equal(c.extra['endpoint'], 'http://localhost:9000');
  });

  it('rclone services: the remote is the address, the menu entry names the section', async () => {
    const h = home();
    const { clients } = await wizard(h, ['', 'l', '3', '', 'n']);
    const c = clients[0] as ClientConfig;
    assert.deepEqual([c.section, c.protocol, c.host, c.directory], ['dropbox', 'rclone', 'dropbox', 'Escale Repository']);
    const h2 = home();
    const generic = await wizard(h2, ['', 'l', '11', 'bad:name', 'myremote', 'sub/dir', 'n']);
    assert.deepEqual([generic.clients[0]?.host, generic.clients[0]?.directory], ['myremote', 'sub/dir']);
  });

  it('rebuilds a named existing section from scratch and keeps the other sections', async () => {
    const h = home();
    const text = `[other]\nlocal path = ${join(h.dir, 'o')}\nprotocol = file\nrelay path = ${join(h.dir, 'r')}\n\n[mine]\nlocal path = ${join(h.dir, 'm')}\nprotocol = ftp\nhost address = old.example.org\nexclude = *.tmp\n`;
    const { clients, prompter, plan } = await wizard(h, ['mine', '', '', '8', 'r2', 'n'], text);
    assert.ok(prompter.said.includes("Overwriting section 'mine'"));
    assert.ok(plan.text.startsWith(`[other]\nlocal path = ${join(h.dir, 'o')}\nprotocol = file\nrelay path = ${join(h.dir, 'r')}\n\n[mine]\n`));
    const mine = clients[1] as ClientConfig;
    assert.deepEqual([mine.section, mine.localPath, mine.protocol, mine.directory, mine.filters.exclude.length], ['mine', join(h.dir, 'm'), 'file', join(h.dir, 'r2'), 0]);
  });

  it("runs 'rclone config' only when the user agrees, then uses the remote it created; never installs rclone", async () => {
    const h = home();
    const remotes = ['myremote'];
    let runs = 0;
    const runRcloneConfig = async (): Promise<void> => {
      runs++;
      remotes.push('newone');
    };
    const { clients } = await wizard(h, ['', 'l', '11', 'newone', 'y', '', 'n'], '', { rcloneRemotes: async () => [...remotes], runRcloneConfig });
    assert.equal(runs, 1);
    assert.equal(clients[0]?.host, 'newone');
    const h2 = home();
    const missing = await wizard(h2, ['', 'l', '3', '', '', '', 'n'], '', { findExecutable: () => undefined });
    assert.ok(missing.prompter.said.some((line) => line.includes('https://rclone.org/install/')));
    assert.equal(missing.clients[0]?.host, 'dropbox');
    assert.equal(missing.clients[0]?.extra['rclone binary'], undefined);
  });

  it('asks a wrong answer again with a message', async () => {
    const h = home();
    const { prompter } = await wizard(h, ['maybe', '', 'l', '0', 'fifteen', '8', 'l', 'r', 'n']);
    assert.ok(prompter.said.includes("  answer 'y' (yes) or 'n' (no)"));
    assert.ok(prompter.said.includes('  choose a number from 1 to 14'));
    assert.ok(prompter.said.includes('  the relay folder cannot be the local repository itself'));
  });
});

describe('wizard, advanced mode', () => {
  it('new FTPS section: address parts, credentials, generated key, download mode with guided puller count', async () => {
    const h = home();
    const { clients, plan } = await wizard(h, [
      'n', 'l', '', 'ftps://ftp.example.org:990/escale/docs', 'docs', 'laptop', 'alice', 'pw', '', '', '', 'download', '', '3', '', '4', '',
    ]);
    const c = clients[0] as ClientConfig;
    assert.deepEqual([c.section, c.clientName, c.protocol, c.host, c.port, c.directory], ['docs', 'laptop', 'ftps', 'ftp.example.org', 990, 'escale/docs']);
    assert.deepEqual([c.user, c.password, c.mode, c.pullerCount, c.refreshSec], ['alice', 'pw', 'download', 2, 4]);
    assert.equal(c.encryption.algorithm, 'fernet');
    assert.equal(c.encryption.passphraseFile, join(h.dir, 'cfg', 'docs.passphrase'));
    assert.match(plan.text, /^client count = 3$/m);
    assert.match(plan.text, /^upload count = 1$/m);
    assert.doesNotMatch(plan.text, /^index/m, 'no index for ftps');
  });

  it('asks the protocol when the address has none, and keeps an rclone path as the relay folder (configuration.md U-17)', async () => {
    const h = home();
    const { clients } = await wizard(h, ['n', 'l', '', 'myremote:Folder/Sub', 'ssh', 'dropbox', 'r', '', 'off', 'upload', '', 'n']);
    const c = clients[0] as ClientConfig;
    assert.deepEqual([c.protocol, c.host, c.directory, c.mode, c.encryption.algorithm, c.index.enabled], ['dropbox', 'myremote', 'Folder/Sub', 'upload', null, true]);
    assert.equal(c.maxPageSizeBytes, 200 * 1024 * 1024);
    const h2 = home();
    const url = await wizard(h2, ['n', 'l', '', 'onedrive://myremote/Folder', 'r', '', 'off', 'download', '1', '2', '', '']);
    assert.deepEqual([url.clients[0]?.host, url.clients[0]?.directory, url.clients[0]?.pullerCount, url.clients[0]?.pullOverwrite], ['myremote', 'Folder', 2, true]);
  });

  it('new WebDAV section: the webdav scheme (HTTPS), its path as relay folder, the password taken from a file, index on', async () => {
    const h = home();
    writeFileSync(join(h.dir, 'creds.txt'), 'bob:x\ncarol:frompw\n');
    writeFileSync(join(h.dir, 'creds2.txt'), 'dave:frompw\n');
    const { clients, prompter } = await wizard(h, ['n', 'l', '', 'webdav://dav.example.org/remote.php/dav/escale', 'cloud', '', 'dave', './creds.txt', '~/creds2.txt', 'off', '', '2', '', '', '']);
    assert.ok(prompter.said.some((line) => line.startsWith("  wrong password file: cannot find a line 'dave:<password>'")));
    const c = clients[0] as ClientConfig;
    assert.deepEqual([c.protocol, c.host, c.port, c.directory, c.user, c.password], ['webdav', 'dav.example.org', undefined, 'remote.php/dav/escale', 'dave', 'frompw']);
    assert.deepEqual([c.index.enabled, c.maxPageSizeBytes, c.checksumCache], [true, 200 * 1024 * 1024, true]);
  });

  it('new mounted folder, SFTP and S3 sections in one run', async () => {
    const h = home();
    const { clients } = await wizard(h, [
      'n', 'l1', 'y', 'relay', 'local', '', 'off', '', '2', '', '', 'y',
      'sftp', 'n', 'l2', '', 'sftp://box.example.org/data', '', 'bob', 'pw', FINGERPRINT, 'off', 'shared', '1', '', '30', 'y',
      's3', 'n', 'l3', '', 's3://minio.example.org:9000/bucket/prefix', '', 'KEY', 'SECRET', 'off', 'conservative', '2', '3', 'n', '1', '', 'n',
    ]);
    const [file, sftp, s3] = clients as [ClientConfig, ClientConfig, ClientConfig];
    assert.deepEqual([file.section, file.protocol, file.directory], ['local', 'file', join(h.dir, 'relay')]);
    assert.deepEqual([sftp.protocol, sftp.host, sftp.directory, sftp.user, sftp.password, sftp.extra['host key'], sftp.refreshSec], ['sftp', 'box.example.org', 'data', 'bob', 'pw', FINGERPRINT, 30]);
    assert.equal(sftp.pullerCount, undefined);
    assert.deepEqual([s3.protocol, s3.host, s3.port, s3.directory, s3.user, s3.password, s3.mode, s3.pullerCount], ['s3', 'minio.example.org', 9000, 'bucket/prefix', 'KEY', 'SECRET', 'conservative', 2]);
  });

  it('edits a section: comments, spellings and other sections kept; legacy pull only becomes the mode; existing password never shown', async () => {
    const h = home();
    const text = [
      '# my settings',
      'refresh = 20',
      '',
      '[alice]',
      "# Alice's folder",
      `path = ${join(h.dir, 'alice')}`,
      'relay address = ftp://ftp.example.org/old',
      'user = alice',
      'password = hunter2',
      'pull only = yes',
      'puller count = 5',
      '; trailing comment',
      '',
      '[bob]',
      `local path = ${join(h.dir, 'bob')}`,
      'protocol = file',
      `relay path = ${join(h.dir, 'relay')}`,
      '',
    ].join('\n');
    const { clients, plan, prompter } = await wizard(h, ['alice', 'n', '', '', '', '', '', 'off', '', '1', '3', '', ''], text);
    assert.ok(!prompter.prompts.some((p) => p.prompt.includes('hunter2')));
    assert.equal(prompter.prompts.find((p) => p.prompt.startsWith('Password'))?.prompt, 'Password: [keep the current one] ');
    assert.ok(prompter.said.includes("puller count was: '5'; is now: '3'"));
    for (const kept of ['# my settings', "# Alice's folder", '; trailing comment', 'relay address = ftp://ftp.example.org/old', `path = ${join(h.dir, 'alice')}`, 'password = hunter2']) {
      assert.ok(plan.text.includes(`${kept}\n`), kept);
    }
    assert.doesNotMatch(plan.text, /pull only/);
    assert.ok(plan.text.endsWith(`[bob]\nlocal path = ${join(h.dir, 'bob')}\nprotocol = file\nrelay path = ${join(h.dir, 'relay')}\n`));
    const alice = clients[0] as ClientConfig;
    assert.deepEqual([alice.mode, alice.pullerCount, alice.refreshSec, alice.host, alice.directory, alice.password], ['download', 3, 20, 'ftp.example.org', 'old', 'hunter2']);
    assert.equal(mode(h.config), 0o600, 'a file holding a password is made private');
  });

  it('never shows a key written in the configuration itself, and keeps it on an empty answer', async () => {
    const h = home();
    const key = `${'k'.repeat(43)}=`;
    const text = `[a]\nlocal path = ${join(h.dir, 'a')}\nprotocol = file\nrelay path = ${join(h.dir, 'r')}\nencryption = fernet\npassphrase = ${key}\n`;
    const { clients, prompter } = await wizard(h, ['a', 'n', '', '', '', '', '', '', '2', '', '', ''], text);
    assert.ok(!prompter.prompts.some((p) => p.prompt.includes(key)));
    assert.ok(prompter.prompts.some((p) => p.prompt === 'Passphrase filename: [keep the current one] '));
    assert.equal(clients[0]?.encryption.passphrase?.toString(), key);
  });

  it('copies a key file given from outside into the configuration folder (0600)', async () => {
    const h = home();
    const key = `${'q'.repeat(43)}=`;
    mkdirSync(join(h.dir, 'usb'));
    writeFileSync(join(h.dir, 'usb', 'team.passphrase'), key);
    const { clients, prompter } = await wizard(h, ['n', 'l', 'y', 'relay', 'x', '', '', 'usb/team.passphrase', '', '2', '', '', '']);
    assert.ok(prompter.said.includes('Copying file into configuration directory.'));
    const copy = join(h.dir, 'cfg', 'team.passphrase');
    assert.equal(clients[0]?.encryption.passphraseFile, copy);
    assert.equal(readFileSync(copy, 'utf8'), key);
    assert.equal(mode(copy), 0o600);
  });

  it('edits the relay address with a message per changed part, and keeps the folder when the new address has none', async () => {
    const h = home();
    const text = `[a]\nlocal path = ${join(h.dir, 'a')}\nprotocol = ftp\nhost address = old.example.org\nhost directory = keep/me\nencryption = off\n`;
    const { clients, prompter } = await wizard(h, ['a', 'n', '', 'ftps://new.example.org', '', '', '', 'off', 'upload', '', ''], text);
    assert.ok(prompter.said.includes("Protocol 'ftp' modified to: 'ftps'"));
    assert.ok(prompter.said.includes("Address 'old.example.org' modified to: 'new.example.org'"));
    assert.deepEqual([clients[0]?.protocol, clients[0]?.host, clients[0]?.directory, clients[0]?.mode], ['ftps', 'new.example.org', 'keep/me', 'upload']);
  });

  it('rebuilds a section that has no usable protocol (the notice of configuration.md U-16 does not crash)', async () => {
    const h = home();
    const text = `[old]\nlocal path = ${join(h.dir, 'old')}\nprotocol = ssh\nhost address = box\n`;
    const { clients, prompter } = await wizard(h, ['old', 'n', 'new', 'y', 'relay', '', 'off', '', '2', '', '', ''], text);
    assert.ok(prompter.said.includes("Section 'old' has no usable protocol; it is rebuilt from the start."));
    assert.deepEqual([clients[0]?.section, clients[0]?.localPath, clients[0]?.protocol], ['old', join(h.dir, 'new'), 'file']);
  });

  it('refuses an invalid mode, puller count, key file and address, then accepts good ones', async () => {
    const h = home();
    writeFileSync(join(h.dir, 'notakey'), 'short');
    const { prompter } = await wizard(h, [
      'n', 'l', '', 'gopher://x', 'ftp://ftp.example.org', 'x', '', '', '', '', 'notakey', 'k', '', 'sideways', 'shared', '1', '0', '2', '0', '', '',
    ]);
    const said = prompter.said.join('\n');
    assert.match(said, /unknown protocol 'gopher'/);
    assert.match(said, /does not hold a fernet key/);
    assert.match(said, /'sideways' is not a mode/);
    assert.match(said, /expected at least 1, got 0/);
    assert.match(said, /expected a number of seconds greater than 0/);
  });
});

describe('wizard, sections it cannot repair', () => {
  it('says so before the questions, and writes nothing when the problem remains', async () => {
    const h = home();
    const text = `[a]\nlocal path = ${join(h.dir, 'a')}\nprotocol = file\nrelay path = ${join(h.dir, 'r')}\nmaxpagesize = big\n`;
    const prompter = scripted(['a', 'n', '', '', '', 'off', '', '2', '', '', '']);
    await assert.rejects(runWizardFlow(prompter, env(h), text, false), /section \[a\] would not load: maxpagesize: .*nothing was written/);
    assert.ok(prompter.said.some((line) => line.startsWith("Section 'a' has a problem the questions may not fix: maxpagesize")));
  });
});

describe('wizard, end of input', () => {
  it('throws WizardAborted at any question and plans nothing', async () => {
    const h = home();
    await assert.rejects(runWizardFlow(scripted(['n', 'l', '', 'ftp://ftp.example.org', 'x', '', 'alice']), env(h), '', true), WizardAborted);
  });
});
