import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EscaleError } from '../core/errors.js';
import { SecretRegistry } from '../core/redact.js';
import { loadConfigText } from './load.js';
import { parseConfigText } from './parse.js';
import { readCredentialFile, resolveConfig, type FileProbe, type ResolvedConfig } from './resolve.js';
import { OPTIONS, type ClientConfig } from './schema.js';

const FILE = '/cfg/escale.conf';
const FERNET = 'n5qI_sX--DTigK4_2K_3IQ4KeroCYxn-pqDs7vHvLQk=';
const MIB = 1024 * 1024;

function fakeFs(files: Record<string, string>, dirs: string[] = []): FileProbe {
  return {
    kind: (p) => (p in files ? 'file' : dirs.includes(p) ? 'dir' : 'missing'),
    read: (p) => Buffer.from(files[p] ?? '', 'utf8'),
  };
}

function load(text: string, files: Record<string, string> = {}, secrets = new SecretRegistry(), file = FILE): ResolvedConfig {
  return resolveConfig(parseConfigText(text), { file, home: '/home/u', cwd: '/work', hostname: 'host1', fs: fakeFs(files), secrets });
}

const BASE = '[a]\nlocal path = /data\nprotocol = file\nrelay path = /relay\n';

function client(extra: string, files: Record<string, string> = {}): ClientConfig {
  const c = load(BASE + extra, files).clients[0];
  assert.ok(c);
  return c;
}

function errorOf(text: string, files: Record<string, string> = {}): string {
  try {
    load(text, files);
  } catch (error) {
    assert.ok(error instanceof EscaleError);
    assert.equal(error.code, 'Config');
    return error.message;
  }
  assert.fail('expected a configuration error');
}

describe('defaults (Appendix A)', () => {
  it('fills every default of a minimal section', () => {
    const { global, clients } = load(BASE);
    assert.deepEqual(global, { logFile: '/cfg/escale.log', logRotate: 3, logLevel: 'debug', keepAliveSec: null, sources: {} });
    const c = clients[0];
    assert.ok(c);
    assert.equal(c.section, 'a');
    assert.equal(c.clientName, 'host1');
    assert.equal(c.localPath, '/data');
    assert.equal(c.protocol, 'file');
    assert.equal(c.directory, '/relay');
    assert.equal(c.mode, 'shared');
    assert.equal(c.refreshSec, 30);
    assert.equal(c.lockTimeoutSec, 259200);
    assert.equal(c.useMtime, true);
    assert.equal(c.checksumAlgorithm, 'sha512');
    assert.equal(c.checksumCache, true);
    assert.equal(c.cacheDir, '/cfg');
    assert.equal(c.dataDir, '/cfg/escale');
    assert.deepEqual(c.encryption, { algorithm: null });
    assert.deepEqual(c.index, { enabled: false });
    assert.equal(c.maxPageSizeBytes, 200 * MIB);
    assert.equal(c.uploadMaxWaitSec, 600);
    assert.equal(c.watch, true);
    assert.equal(c.pollIntervalSec, 2);
    assert.equal(c.fullScanIntervalSec, 3600);
    assert.equal(c.pullOverwrite, false);
    assert.equal(c.allowPageDeletion, false);
    assert.equal(c.verbosity, 1);
    assert.equal(c.verifySsl, undefined);
    assert.deepEqual(c.filters, { extensions: [], include: [], exclude: [], includeDirs: [], excludeDirs: [] });
    assert.deepEqual(c.retryOnError, []);
    assert.deepEqual(c.extra, {});
  });

  it('uses the section name as client name on a host called localhost', () => {
    const r = resolveConfig(parseConfigText(BASE), { file: FILE, home: '/h', cwd: '/w', hostname: 'localhost', fs: fakeFs({}) });
    assert.equal(r.clients[0]?.clientName, 'a');
  });

  it('derives cache and log locations from where the file is (configuration.md C10)', () => {
    const at = (file: string) => load(BASE, {}, new SecretRegistry(), file);
    assert.equal(at('/home/u/.config/escale/escale.conf').clients[0]?.cacheDir, '/home/u/.cache/escale');
    assert.equal(at('/home/u/.escale/escale.conf').clients[0]?.cacheDir, '/home/u/.escale/cache');
    assert.equal(at('/etc/escale.conf').clients[0]?.dataDir, '/var/cache/escale/escale');
    assert.equal(at('/etc/escale.conf').global.logFile, '/var/log/escale.log');
    assert.equal(at('/srv/my.sync.conf').global.logFile, '/srv/my.sync.log');
  });
});

/** A valid sample value per option id, and what the resolved client or global must then hold. */
const SAMPLES: Record<string, [string, (c: ClientConfig, r: ResolvedConfig) => void]> = {
  logFile: ['~/logs/e.log', (_c, r) => assert.equal(r.global.logFile, '/home/u/logs/e.log')],
  logRotate: ['5', (_c, r) => assert.equal(r.global.logRotate, 5)],
  logLevel: ['warning', (_c, r) => assert.equal(r.global.logLevel, 'warning')],
  keepAlive: ['15', (_c, r) => assert.equal(r.global.keepAliveSec, 15)],
  localPath: ['sub/dir', (c) => assert.equal(c.localPath, '/work/sub/dir')],
  protocol: ['file', (c) => assert.equal(c.protocol, 'file')],
  address: ['/mnt/relay', (c) => assert.equal(c.directory, '/mnt/relay/relay')],
  directory: ['/other', (c) => assert.equal(c.directory, '/other')],
  port: ['2121', (c) => assert.equal(c.port, undefined)],
  user: ['bob', (c) => assert.equal(c.user, 'bob')],
  password: ['pw.credential', (c) => assert.deepEqual([c.user, c.password], ['bob', 's3cret!'])],
  refresh: ['12.5', (c) => assert.equal(c.refreshSec, 12.5)],
  timestamp: ['%%y%%m%%d_%%H%%M%%S', (c) => assert.equal(c.legacyTimestampFormat, '%y%m%d_%H%M%S')],
  clientName: ['laptop', (c) => assert.equal(c.clientName, 'laptop')],
  encryption: ['plain', (c) => assert.equal(c.encryption.algorithm, 'plain')],
  passphrase: ['literal-key', (c) => assert.deepEqual(c.encryption.passphrase, Buffer.from('literal-key'))],
  pushOnly: ['yes', (c) => assert.equal(c.mode, 'upload')],
  pullOnly: ['on', (c) => assert.equal(c.mode, 'download')],
  mode: ['conservative', (c) => assert.equal(c.mode, 'conservative')],
  sslVersion: ['tlsv1.2', (c) => assert.equal(c.sslVersion, 'TLSv1.2')],
  verifySsl: ['no', (c) => assert.equal(c.verifySsl, false)],
  certificate: ['/certs/me.pem', (c) => assert.equal(c.certificate, '/certs/me.pem')],
  keyfile: ['/certs/me.key', (c) => assert.equal(c.keyfile, '/certs/me.key')],
  extensions: ['.txt, md', (c) => assert.deepEqual(c.filters.extensions, ['txt', 'md'])],
  include: ['*.txt', (c) => assert.deepEqual(c.filters.include.map((p) => p.source), ['*.txt'])],
  exclude: ['*.tmp, /~$/', (c) => assert.deepEqual(c.filters.exclude.map((p) => p.source), ['*.tmp', '/~$/'])],
  includeDirs: ['docs', (c) => assert.deepEqual(c.filters.includeDirs.map((p) => p.source), ['docs'])],
  excludeDirs: ['/^\\.git/', (c) => assert.deepEqual(c.filters.excludeDirs.map((p) => p.source), ['/^\\.git/'])],
  diskQuota: ['2GB', (c) => assert.equal(c.diskQuotaBytes, 2048 * MIB)],
  maintainer: ['me@example.org', (c) => assert.equal(c.maintainer, 'me@example.org')],
  lockTimeout: ['3600', (c) => assert.equal(c.lockTimeoutSec, 3600)],
  pullerCount: ['2', (c) => assert.equal(c.pullerCount, 2)],
  checksum: ['sha256', (c) => assert.equal(c.checksumAlgorithm, 'sha256')],
  checksumCache: ['~/cc.db', (c) => assert.equal(c.checksumCache, '/home/u/cc.db')],
  index: ['topdir:2', (c) => assert.deepEqual(c.index, { enabled: true, pages: 'topdir', depth: 2 })],
  maxPageSize: ['1GB', (c) => assert.equal(c.maxPageSizeBytes, 1024 * MIB)],
  minSplitSize: ['10', () => undefined],
  maxPendingTransfers: ['4', (c) => assert.equal(c.maxPendingTransfers, 4)],
  retryOnError: ['104, 110', (c) => assert.deepEqual(c.retryOnError, [104, 110])],
  pullOverwrite: ['yes', (c) => assert.equal(c.pullOverwrite, true)],
  verbosity: ['2', (c) => assert.equal(c.verbosity, 2)],
  allowPageDeletion: ['true', (c) => assert.equal(c.allowPageDeletion, true)],
  priority: ['upload', (c) => assert.equal(c.priority, 'upload')],
  cacheDir: ['/var/tmp/esc', (c) => assert.equal(c.dataDir, '/var/tmp/esc/escale')],
  uploadMaxWait: ['120', (c) => assert.equal(c.uploadMaxWaitSec, 120)],
  watch: ['no', (c) => assert.equal(c.watch, false)],
  pollInterval: ['0.5', (c) => assert.equal(c.pollIntervalSec, 0.5)],
  fullScanInterval: ['600', (c) => assert.equal(c.fullScanIntervalSec, 600)],
};

describe('every key and alias (configuration.md C1, C2, C9)', () => {
  const files = { '/certs/me.pem': 'PEM', '/certs/me.key': 'KEY', '/cfg/pw.credential': 'bob:s3cret!' };
  it('has a sample for every option', () => {
    assert.deepEqual(OPTIONS.map((o) => o.id).filter((id) => !(id in SAMPLES)), []);
  });
  for (const option of OPTIONS) {
    for (const key of option.keys) {
      it(`reads '${key}' as ${option.id}`, () => {
        const sample = SAMPLES[option.id];
        assert.ok(sample);
        const [value, check] = sample;
        let text: string;
        if (option.scope === 'global') text = `${key} = ${value}\n${BASE}`;
        else if (option.id === 'localPath') text = `[a]\n${key} = ${value}\nprotocol = file\nrelay path = /relay\n`;
        else if (option.id === 'directory') text = `[a]\nlocal path = /data\nprotocol = file\n${key} = ${value}\n`;
        else if (option.id === 'address') text = `[a]\nlocal path = /data\nprotocol = file\n${key} = ${value}\nrelay path = relay\n`;
        else if (option.id === 'protocol') text = `[a]\nlocal path = /data\n${key} = ${value}\nrelay path = /relay\n`;
        else text = `${BASE}${key} = ${value}\n`;
        const r = load(text, files);
        const c = r.clients[0];
        assert.ok(c);
        check(c, r);
        const source = option.scope === 'global' ? r.global.sources[option.id] : c.sources[option.id];
        assert.equal(source?.key, key);
      });
    }
  }

  it('gives the first alias in priority order the win, whatever the file order, with a warning', () => {
    const r = load(`${BASE}remote user = late\nuser = first\nusername = last\n`);
    assert.equal(r.clients[0]?.user, 'first');
    assert.deepEqual(r.warnings, [
      "/cfg/escale.conf:5: [a] 'remote user' is ignored: 'user' (line 6) sets the same option and takes priority",
      "/cfg/escale.conf:7: [a] 'username' is ignored: 'user' (line 6) sets the same option and takes priority",
    ]);
  });

  it('inherits global keys and lets a section override them', () => {
    const r = load(`refresh = 10\nmode = download\n${BASE}[b]\nlocal path = /b\nprotocol = file\nrelay path = /relay\nclient name = b\nmode = upload\n`);
    assert.deepEqual(r.clients.map((c) => [c.section, c.refreshSec, c.mode]), [
      ['a', 10, 'download'],
      ['b', 10, 'upload'],
    ]);
    assert.equal(r.clients[0]?.sources.refresh?.section, 'DEFAULT');
  });

  it('passes backend keys through extra and accepts the wizard keys silently', () => {
    const r = load(`rclone binary = /usr/bin/rclone\n${BASE}max retries = 5\nclient count = 3\nhomogeneous clients = yes\nupload count = 1\n`);
    assert.deepEqual(r.clients[0]?.extra, { 'rclone binary': '/usr/bin/rclone', 'max retries': '5' });
    assert.deepEqual(r.warnings, []);
  });

  it('warns about global-only keys in a section and keys that have no effect', () => {
    const r = load(`${BASE}log file = /x.log\nsplit = 3\n`);
    assert.deepEqual(r.warnings, [
      "/cfg/escale.conf:5: 'log file' is a global setting; it is ignored in section [a] (move it before the first section)",
      "/cfg/escale.conf:6: 'split' has no effect (kept for compatibility)",
    ]);
  });

  it('interpolates %(key)s from the section and the globals, and %%', () => {
    const text = `rclone binary = /srv\n[a]\nclient = /data\nlocal path = %(client)s/mine\nprotocol = file\nrelay path = %(rclone binary)s/relay\npassword = 100%%\n`;
    const c = load(text).clients[0];
    assert.equal(c?.localPath, '/data/mine');
    assert.equal(c?.directory, '/srv/relay');
    assert.equal(c?.password, '100%');
  });
});

describe('value rules (configuration.md C2, C5–C8)', () => {
  it('reads "bool or number" keys as booleans first (refresh = 1 is 30 s), with a warning', () => {
    const r = load(`${BASE}refresh = 1\nlock timeout = 1\n`);
    assert.equal(r.clients[0]?.refreshSec, 30);
    assert.equal(r.clients[0]?.lockTimeoutSec, 259200);
    assert.equal(r.warnings[0], "/cfg/escale.conf:5: [a] refresh = 1 is read as 'yes', i.e. 30 seconds (as in escale 0.7); write 1.0 for one second");
    assert.equal(client('refresh = 1.0').refreshSec, 1);
    assert.equal(client('refresh = yes').refreshSec, 30);
    assert.equal(client('lock timeout = no').lockTimeoutSec, null);
    assert.deepEqual(client('index = 1').index, { enabled: true, pages: 'single' });
    assert.deepEqual(client('index = top dir').index, { enabled: true, pages: 'topdir', depth: 1 });
    assert.deepEqual(client('compact = off').index, { enabled: false });
    assert.equal(load(`keep alive = yes\n${BASE}`).global.keepAliveSec, 0);
    assert.equal(load(`keep alive = 1\n${BASE}`).global.keepAliveSec, 0);
    assert.equal(load(`keep alive = off\n${BASE}`).global.keepAliveSec, null);
  });

  it('reads timestamps, checksums and the checksum cache', () => {
    assert.equal(client('mtime = no').useMtime, false);
    assert.equal(client('checksum = no').checksumAlgorithm, null);
    assert.equal(client('hash algorithm = MD5').checksumAlgorithm, 'md5');
    assert.equal(client('checksum = sha3_256').checksumAlgorithm, 'sha3-256');
    assert.equal(client('checksum cache = off').checksumCache, false);
  });

  it('resolves modes (configuration.md C8): shar*, protective and preservative, push/pull only win over mode', () => {
    assert.equal(client('mode = Sharing').mode, 'shared');
    assert.equal(client('mode = protective').mode, 'conservative');
    assert.equal(client('synchronization mode = preservative').mode, 'conservative');
    assert.equal(client('mode = DOWNLOAD').mode, 'download');
    const r = load(`${BASE}mode = download\nread only = yes\n`);
    assert.equal(r.clients[0]?.mode, 'upload');
    assert.deepEqual(r.warnings, ["/cfg/escale.conf:5: [a] 'mode = download' is overridden by 'push only': the mode is upload"]);
  });

  it('parses relay addresses (configuration.md C5)', () => {
    const relay = (text: string) => {
      const c = load(`[a]\nlocal path = /d\n${text}\n`).clients[0];
      assert.ok(c);
      return [c.protocol, c.host, c.port, c.directory];
    };
    assert.deepEqual(relay('host address = ftp://ftp.example.org:2121/base\nrelay dir = sub'), ['ftp', 'ftp.example.org', 2121, 'sub/base']);
    assert.deepEqual(relay('protocol = webdav\naddress = dav.example.org\ndirectory = /escale/'), ['webdav', 'dav.example.org', undefined, 'escale']);
    assert.deepEqual(relay('protocol = https\naddress = https://dav.example.org/x\nport = 8443'), ['https', 'dav.example.org', 8443, 'x']);
    assert.deepEqual(relay('address = file:///mnt/relay\nrelay path = sub'), ['file', undefined, undefined, '/mnt/relay/sub']);
    assert.deepEqual(relay('protocol = file\nrelay path = ~/relay'), ['file', undefined, undefined, '/home/u/relay']);
    assert.deepEqual(relay('protocol = file\nhost address = localhost\nhost directory = /abs/relay'), ['file', undefined, undefined, '/abs/relay']);
    assert.deepEqual(relay('protocol = file\nrelay path = ./demo/relay'), ['file', undefined, undefined, '/work/demo/relay']);
    assert.deepEqual(relay('protocol = dropbox\nhost address = mydropbox\nrelay path = Escale'), ['dropbox', 'mydropbox', undefined, 'Escale']);
    assert.deepEqual(relay('protocol = rclone\nhost address = remote:some/folder'), ['rclone', 'remote', undefined, 'some/folder']);
    assert.deepEqual(relay('protocol = s3\naddress = s3://bucketremote/path'), ['s3', 'bucketremote', undefined, 'path']);
    assert.deepEqual(relay('protocol = googledrive'), ['googledrive', '/home/u/.config/escale/.GoogleDrive', undefined, '']);
  });

  it('a key, credential or certificate file that cannot be looked at is reported with its cause, never as missing nor as a literal secret', () => {
    const probe: FileProbe = {
      kind: (p) => (p.startsWith('/cfg/locked/') || p === '/cfg/secret' ? 'inaccessible' : 'missing'),
      read: () => assert.fail('an inaccessible file is never read'),
      problem: (p) => `EACCES: permission denied, stat '${p}'`,
    };
    const tryLoad = (text: string): string => {
      try {
        resolveConfig(parseConfigText(text), { file: FILE, home: '/home/u', cwd: '/work', hostname: 'h', fs: probe, secrets: new SecretRegistry() });
      } catch (error) {
        assert.ok(error instanceof EscaleError);
        return error.message;
      }
      return assert.fail('loaded');
    };
    const base = '[a]\nlocal path = /d\nprotocol = ftp\nhost address = ftp.example.org\nuser = u\n';
    assert.match(tryLoad(`${base}encryption = fernet\npassphrase = locked/key.passphrase\n`), /escale\.conf:7: \[a\] passphrase: cannot access '\/cfg\/locked\/key\.passphrase': EACCES: permission denied/);
    // a bare word names a file in the configuration folder when one exists; one that cannot be checked is not taken as the secret
    assert.match(tryLoad(`${base}encryption = fernet\npassphrase = secret\n`), /passphrase: cannot access '\/cfg\/secret': EACCES/);
    assert.match(tryLoad(`${base}secret file = locked/ftp.credential\n`), /cannot access '\/cfg\/locked\/ftp\.credential': EACCES/);
    assert.match(tryLoad(`${base}certificate = /cfg/locked/client.pem\n`), /certificate: cannot access '\/cfg\/locked\/client\.pem': EACCES/);
  });

  it("honours the address's URL scheme next to the protocol, and refuses a conflicting one with file, line and key", () => {
    const client = (text: string) => {
      const c = load(`[a]\nlocal path = /d\n${text}\n`).clients[0];
      assert.ok(c);
      return c;
    };
    const cases: Array<[string, string, string, 'http' | 'https' | undefined]> = [
      ['webdav', 'http://dav.example.org', 'http', undefined],
      ['webdav', 'https://dav.example.org', 'webdav', undefined],
      ['webdav', 'webdavs://dav.example.org', 'webdav', undefined],
      ['http', 'http://dav.example.org', 'http', undefined],
      ['https', 'webdavs://dav.example.org', 'https', undefined],
      ['ftp', 'ftps://ftp.example.org', 'ftps', undefined],
      ['ftp', 'ftp://ftp.example.org', 'ftp', undefined],
      ['s3', 'http://127.0.0.1:9000', 's3', 'http'],
      ['s3', 'https://minio.example.org', 's3', 'https'],
      ['s3', 'http://minio', 's3', 'http'],
      ['sftp', 'ssh://box.example.org', 'sftp', undefined],
      ['dropbox', 'rclone://remote/folder', 'dropbox', undefined],
    ];
    for (const [protocol, address, expected, scheme] of cases) {
      const c = client(`protocol = ${protocol}\nhost address = ${address}`);
      assert.equal(c.protocol, expected, `${protocol} + ${address}`);
      assert.equal(c.scheme, scheme, `${protocol} + ${address}`);
    }
    assert.equal(client('protocol = s3\nhost address = http://127.0.0.1:9000/bucket').host, '127.0.0.1');
    assert.equal(client('protocol = s3\nhost address = http://127.0.0.1:9000/bucket').directory, 'bucket');
    for (const [protocol, address] of [['https', 'http://x.org'], ['http', 'https://x.org'], ['ftps', 'ftp://x.org'], ['ftp', 'http://x.org'], ['s3', 'ftp://x.org'], ['sftp', 'https://x.org'], ['webdav', 'ftp://x.org'], ['file', 'http://x.org/r']]) {
      assert.throws(
        () => load(`[a]\nlocal path = /d\nprotocol = ${protocol}\nhost address = ${address}\n`),
        (error: EscaleError) => error.code === 'Config' && error.message.includes('/cfg/escale.conf:4: [a] host address:') && error.message.includes(`the protocol is '${protocol}'`),
        `${protocol} + ${address}`,
      );
    }
    assert.throws(() => load('[a]\nlocal path = /d\nprotocol = s3\nhost address = http://x.org:9000\nscheme = https\n'), /escale\.conf:5: \[a\] scheme: 'https' disagrees with the address/);
  });

  it('reads credential files (configuration.md C6), relative to the configuration folder', () => {
    const files = { '/cfg/a.credential': 'alice:pa:ss\n', '/cfg/multi': 'bobby:no\nbob:yes\r\n', '/cfg/one': 'only-password\n' };
    let c = client('password = a.credential', files);
    assert.deepEqual([c.user, c.password, c.credentialFile], ['alice', 'pa:ss', '/cfg/a.credential']);
    c = client('user = bob\nsecret file = multi', files);
    assert.deepEqual([c.user, c.password], ['bob', 'yes']);
    c = client('user = carol\ncredential = one', files);
    assert.deepEqual([c.user, c.password], ['carol', 'only-password']);
    assert.deepEqual(readCredentialFile('u:p', 'u'), { ok: true, value: { password: 'p' } });
  });

  it('reads passphrase files (configuration.md C6) as their exact bytes (final newline kept, as 0.7 does), and literal keys', () => {
    const files = { '/cfg/k.passphrase': `${FERNET}\n`, '/keys/bf': 'raw key\r\n' };
    let c = client('encryption = yes\npassphrase = k.passphrase', files);
    assert.equal(c.encryption.algorithm, 'fernet');
    assert.equal(c.encryption.passphrase?.toString(), `${FERNET}\n`);
    assert.equal(c.encryption.passphraseFile, '/cfg/k.passphrase');
    c = client('encryption = Blowfish\nkey = /keys/bf', files);
    assert.deepEqual([c.encryption.algorithm, c.encryption.passphrase?.toString()], ['blowfish', 'raw key\r\n']);
    c = client(`encryption = fernet\npassphrase = ${FERNET}`);
    assert.equal(c.encryption.passphraseFile, undefined);
    assert.equal(client('encryption = blowfish.blowfish\npassphrase = x').encryption.algorithm, 'blowfish.blowfish');
    assert.equal(client('encryption = blowfish.cryptography\npassphrase = x').encryption.algorithm, 'blowfish.cryptography');
  });

  it('registers passwords and passphrases for redaction', () => {
    const secrets = new SecretRegistry();
    load(`${BASE}password = hunter22\nencryption = blowfish\npassphrase = my-bf-key\n`, {}, secrets);
    assert.equal(secrets.redact('pw hunter22 key my-bf-key'), 'pw *** key ***');
  });

  it('reads a login written into the relay address, registers its password, and lets the keys win', () => {
    const secrets = new SecretRegistry();
    const [c] = load(`[a]\nlocal path = /tmp/a\nhost address = https://me:in-the%%40url@dav.example.org:8443/relay\n`, {}, secrets).clients;
    assert.deepEqual([c?.protocol, c?.host, c?.port, c?.directory, c?.user, c?.password], ['https', 'dav.example.org', 8443, 'relay', 'me', 'in-the@url']);
    assert.equal(secrets.redact('login in-the@url'), 'login ***');
    const [keys] = load(`[a]\nlocal path = /tmp/a\nhost address = ftp://me:old@ftp.example.org/r\nuser = you\npassword = new\n`).clients;
    assert.deepEqual([keys?.host, keys?.user, keys?.password], ['ftp.example.org', 'you', 'new']);
    const [plain] = load(`[a]\nlocal path = /tmp/a\nprotocol = sftp\nhost address = me@ssh.example.org/r\n`).clients;
    assert.deepEqual([plain?.host, plain?.user], ['me@ssh.example.org', undefined], 'user@host alone stays the host, as 0.7 reads it');
  });

  it('warns when two sections share a relay and a client name', () => {
    const r = load(`${BASE}[b]\nlocal path = /b\nprotocol = file\nrelay path = /relay\n`);
    assert.deepEqual(r.warnings, ["/cfg/escale.conf: sections [a] and [b] use the same relay with the same client name 'host1'; set 'client name' in one of them"]);
  });
});

describe('malformed files: one exact message each', () => {
  const cases: Array<[string, string, string, Record<string, string>?]> = [
    ['misspelt key', `[a]\nlocal path = /d\nprotocol = file\nrefrsh = 5\nrelay path = /r\n`, "/cfg/escale.conf:4: unknown key 'refrsh' in section [a]; did you mean 'refresh'?"],
    ['misspelt global key', `loglevel = INFO\n${BASE}`, "/cfg/escale.conf:1: unknown key 'loglevel' in the global settings; did you mean 'log level'?"],
    ['unknown key without suggestion', `${BASE}colour = red\n`, "/cfg/escale.conf:5: unknown key 'colour' in section [a]"],
    ['duplicate key', `${BASE}mode = upload\nMode = download\n`, "/cfg/escale.conf:6: duplicate key 'Mode' in section [a] (first set on line 5)"],
    ['duplicate section', `${BASE}[a]\nmode = upload\n`, '/cfg/escale.conf:5: duplicate section [a] (first defined on line 1)'],
    ['line without delimiter', `${BASE}local path /x\n`, "/cfg/escale.conf:5: expected 'key = value' or '[section]', found 'local path /x'"],
    ['missing key', `${BASE}= 3\n`, "/cfg/escale.conf:5: missing key before '='"],
    ['bad header', `[a\nlocal path = /d\n`, "/cfg/escale.conf:1: malformed section header '[a'; expected '[name]'\n/cfg/escale.conf: no client section: add a '[name]' section with at least 'local path' and the relay settings (or run 'escale -i')"],
    ['reserved section', `${BASE}[error]\nlocal path = /e\nprotocol = file\nrelay path = /r\n`, "/cfg/escale.conf:5: section name 'error' is reserved; choose another name for this client"],
    ['no section', 'refresh = 10\n', "/cfg/escale.conf: no client section: add a '[name]' section with at least 'local path' and the relay settings (or run 'escale -i')"],
    ['missing local path', '[a]\nprotocol = file\nrelay path = /r\n', "/cfg/escale.conf:1: [a] missing 'local path' (the local folder to synchronize)"],
    ['empty local path', '[a]\nlocal path =\nprotocol = file\nrelay path = /r\n', '/cfg/escale.conf:2: [a] local path: empty value; expected folder to synchronize (required)'],
    ['push and pull only', `${BASE}push only = yes\npull only = yes\n`, "/cfg/escale.conf:1: [a] both 'push only' and 'pull only' are set; cannot determine the mode (use 'mode = upload' or 'mode = download')"],
    ['unknown mode', `${BASE}mode = mirror\n`, "/cfg/escale.conf:5: [a] mode: 'mirror' mode not supported; expected upload, download, shared or conservative"],
    ['unknown protocol', '[a]\nlocal path = /d\nprotocol = ftpp\naddress = h\n', "/cfg/escale.conf:3: [a] protocol: unknown protocol 'ftpp'; did you mean 'ftp'? (expected one of file, ftp, ftps, webdav, http, https, googledrive, google, rclone, amazoncloud, b2, dropbox, googlecloud, hubic, onedrive, sftp, swift, s3)"],
    ['ssh', '[a]\nlocal path = /d\nprotocol = ssh\naddress = h\n', "/cfg/escale.conf:3: [a] protocol: protocol 'ssh' was never implemented; use 'sftp'"],
    ['no protocol', '[a]\nlocal path = /d\naddress = server.example.org\n', "/cfg/escale.conf:1: [a] no protocol defined: add 'protocol = ...' or write the address as protocol://server/path"],
    ['no relay at all', '[a]\nlocal path = /d\n', "/cfg/escale.conf:1: [a] no relay defined: set 'protocol' and 'host address' (or 'relay path' for a folder)"],
    ['network protocol without host', '[a]\nlocal path = /d\nprotocol = ftp\n', "/cfg/escale.conf:1: [a] no address defined: add 'host address = server.example.org'"],
    ['file protocol with a host name', '[a]\nlocal path = /d\nprotocol = file\naddress = server\n', "/cfg/escale.conf:1: [a] protocol 'file' needs a folder path, got address 'server'; write 'relay path = /absolute/folder'"],
    ['port out of range', `${BASE}port = 70000\n`, "/cfg/escale.conf:5: [a] port: expected a port number between 1 and 65535, got '70000'"],
    ['conflicting ports', '[a]\nlocal path = /d\naddress = ftp://h:21\nport = 2121\n', "/cfg/escale.conf:1: [a] the port in the address (21) differs from 'port = 2121'"],
    ['relative cache dir', `${BASE}cache dir = cache\n`, "/cfg/escale.conf:5: [a] cache dir: 'cache dir' should be an absolute path, got 'cache'"],
    ['bad size', `${BASE}maxpagesize = big\n`, "/cfg/escale.conf:5: [a] maxpagesize: expected a size such as 500MB or 2 GiB (no unit = MB), got 'big'"],
    ['bad unit', `${BASE}disk quota = 3 XB\n`, "/cfg/escale.conf:5: [a] disk quota: unknown storage unit 'XB' in '3 XB'; use B, KB, MB, GB, TB (or KiB, MiB, GiB, TiB)"],
    ['bad boolean', `${BASE}verify ssl = maybe\n`, "/cfg/escale.conf:5: [a] verify ssl: expected yes/no (or true/false, on/off, 1/0), got 'maybe'"],
    ['refresh disabled', `${BASE}refresh = no\n`, '/cfg/escale.conf:5: [a] refresh: refresh cannot be disabled; give the maximum number of seconds between rounds'],
    ['negative refresh', `${BASE}refresh = -5\n`, '/cfg/escale.conf:5: [a] refresh: expected a number of seconds greater than 0, got -5'],
    ['bad index', `${BASE}index = pages\n`, "/cfg/escale.conf:5: [a] index: wrong index value 'pages'; expected yes, no, topdir or topdir:N"],
    ['bad index depth', `${BASE}index = topdir:0\n`, '/cfg/escale.conf:5: [a] index: expected a depth of at least 1, got 0'],
    ['unknown hash', `${BASE}checksum = sha513\n`, "/cfg/escale.conf:5: [a] checksum: unsupported hash algorithm 'sha513'; did you mean 'sha512'? (use yes for sha512, or no to disable checksums)"],
    ['lone percent', `${BASE}password = 50%off\n`, "/cfg/escale.conf:5: [a] password: a literal '%' must be written '%%' (or start a reference '%(key)s')"],
    ['unknown reference', `${BASE}relay user = %(who)s\n`, "/cfg/escale.conf:5: [a] relay user: '%(who)s' refers to key 'who', which is not set; write '%%' for a literal '%'"],
    ['missing passphrase file (configuration.md U-23)', `${BASE}encryption = blowfish\npassphrase = ~/keys/a.passphrase\n`, "/cfg/escale.conf:6: [a] passphrase: file '/home/u/keys/a.passphrase' does not exist (a value with '/', a leading '~' or a .passphrase/.credential ending is read as a file, never as the secret itself)"],
    ['missing secret file', `${BASE}secret file = creds\n`, "/cfg/escale.conf:5: [a] secret file: file '/cfg/creds' does not exist (a value with '/', a leading '~' or a .passphrase/.credential ending is read as a file, never as the secret itself)"],
    ['encryption without passphrase', `${BASE}encryption = yes\n`, "/cfg/escale.conf:1: [a] encryption 'fernet' needs a key: add 'passphrase = <path of the key file>'"],
    ['bad fernet key', `${BASE}encryption = fernet\npassphrase = short\n`, "/cfg/escale.conf:6: [a] passphrase: a fernet key is 32 bytes in URL-safe base64 (44 characters ending in '='); this value is not one"],
    ['unknown cipher', `${BASE}encryption = blowfsh\npassphrase = k\n`, "/cfg/escale.conf:5: [a] encryption: unsupported encryption algorithm 'blowfsh'; did you mean 'blowfish'? (expected yes, no, fernet, blowfish, blowfish.cryptography, blowfish.blowfish)"],
    ['native off googledrive (configuration.md U-11)', `${BASE}encryption = native\npassphrase = k\n`, "/cfg/escale.conf:5: [a] encryption: 'native' encryption is only available with protocol googledrive; use fernet or blowfish"],
    ['bad pattern', `${BASE}exclude = *.tmp, /[a/\n`, "/cfg/escale.conf:5: [a] exclude: '/[a/' is not a valid pattern (/^(?:[a)/: Unterminated character class)"],
    ['credential file without user', `${BASE}password = c.credential\n`, "/cfg/escale.conf:5: [a] password: cannot read 'user:password' from the first line in credential file '/cfg/c.credential'", { '/cfg/c.credential': 'nocolon\n' }],
    ['missing certificate', `${BASE}certificate = /nope.pem\n`, "/cfg/escale.conf:5: [a] certificate: file '/nope.pem' does not exist"],
    ['bad ssl version', `${BASE}ssl version = SSLv3\n`, "/cfg/escale.conf:5: [a] ssl version: 'SSLv3' is insecure and not supported; use TLS, TLSv1.2 or TLSv1.3"],
    ['bad puller count', `${BASE}pullers = 0\n`, '/cfg/escale.conf:5: [a] pullers: expected a puller count of at least 1, got 0'],
    ['bad maintainer', `${BASE}email = nobody\n`, "/cfg/escale.conf:5: [a] email: expected an e-mail address, got 'nobody'"],
    ['bad priority', `${BASE}priority = high\n`, "/cfg/escale.conf:5: [a] priority: expected 'upload' (or 'download', the default), got 'high'"],
    ['bad log level', `log level = loud\n${BASE}`, "/cfg/escale.conf:1: (global) log level: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'loud'"],
    ['bad keep alive', `keep alive = often\n${BASE}`, "/cfg/escale.conf:1: (global) keep alive: expected yes/no or a delay in seconds, got 'often'"],
    ['bad global value inherited by two sections is reported once', `refresh = fast\n${BASE}[b]\nlocal path = /b\nprotocol = file\nrelay path = /r\n`, "/cfg/escale.conf:1: (global) refresh: expected a number of seconds (or yes = 30), got 'fast'"],
    ['bad max retries', `${BASE}max retries = many\n`, "/cfg/escale.conf:5: [a] max retries: expected a whole number, got 'many'"],
    ['bad single stream archives', `${BASE}single stream archives = sometimes\n`, "/cfg/escale.conf:5: [a] single stream archives: expected yes or no, got 'sometimes'"],
  ];
  for (const [name, text, expected, files] of cases) {
    it(name, () => assert.equal(errorOf(text, files), expected));
  }

  it('reports every problem of a file, one per line, in line order', () => {
    const text = `refresh = fast\n[a]\nlocal path = /d\nprotocol = file\nrelay path = /r\nmode = mirror\nrefrsh = 5\n[b]\nprotocol = fax\n`;
    assert.equal(
      errorOf(text),
      [
        "/cfg/escale.conf:1: (global) refresh: expected a number of seconds (or yes = 30), got 'fast'",
        "/cfg/escale.conf:6: [a] mode: 'mirror' mode not supported; expected upload, download, shared or conservative",
        "/cfg/escale.conf:7: unknown key 'refrsh' in section [a]; did you mean 'refresh'?",
        "/cfg/escale.conf:8: [b] missing 'local path' (the local folder to synchronize)",
        "/cfg/escale.conf:9: [b] protocol: unknown protocol 'fax' (expected one of file, ftp, ftps, webdav, http, https, googledrive, google, rclone, amazoncloud, b2, dropbox, googlecloud, hubic, onedrive, sftp, swift, s3)",
      ].join('\n'),
    );
  });

  it('carries the file and first line in the error details', () => {
    try {
      load(`${BASE}refrsh = 5\n`);
      assert.fail('expected an error');
    } catch (error) {
      assert.ok(error instanceof EscaleError);
      assert.equal(error.details.file, FILE);
      assert.equal(error.details.line, 5);
    }
  });
});

describe('secret files that cannot be read', () => {
  it('a secret file whose read fails (EIO, as /proc/self/mem gives) is a Config error naming the file, not a crash', () => {
    const fs: FileProbe = {
      kind: () => 'file',
      read: () => {
        throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      },
    };
    assert.throws(
      () => resolveConfig(parseConfigText(`${BASE}secret file = /proc/self/mem\n`), { file: FILE, home: '/h', cwd: '/w', hostname: 'h', fs, secrets: new SecretRegistry() }),
      (error: unknown) => error instanceof EscaleError && error.code === 'Config' && /cannot read '\/proc\/self\/mem': EIO/.test(error.message) && error.message.includes(FILE),
    );
  });
});

describe('native sftp and s3 addresses (docs/backends.md)', () => {
  const load = (body: string) => loadConfigText(`[a]\nlocal path = /tmp/a\n${body}\n`, '/cfg/escale.conf', { home: '/home/u', cwd: '/work', hostname: 'h' });
  it('reads a host address with a port as host and port for sftp', () => {
    const c = load('protocol = sftp\nhost address = box.example.org:2222\nrelay directory = escale\nuser = me\nknown hosts = /home/u/.ssh/known_hosts').clients[0]!;
    assert.deepEqual([c.protocol, c.host, c.port, c.directory, c.extra['known hosts']], ['sftp', 'box.example.org', 2222, 'escale', '/home/u/.ssh/known_hosts']);
  });
  it('keeps a single word as an rclone remote name, as escale 0.7 did', () => {
    const c = load('protocol = sftp\nhost address = mybox\nrelay directory = escale').clients[0]!;
    assert.deepEqual([c.host, c.port, c.directory], ['mybox', undefined, 'escale']);
  });
  it('accepts s3 with no address (AWS) and the s3 keys; secret extra keys are registered for redaction', () => {
    const secrets = new SecretRegistry();
    const c = loadConfigText('[a]\nlocal path = /tmp/a\nprotocol = s3\nrelay directory = bucket/prefix\nregion = eu-west-3\npath style = no\nkey passphrase = hunter2\n', '/cfg/escale.conf', { home: '/home/u', cwd: '/work', hostname: 'h', secrets }).clients[0]!;
    assert.deepEqual([c.host, c.directory, c.extra.region, c.extra['path style']], [undefined, 'bucket/prefix', 'eu-west-3', 'no']);
    assert.equal(secrets.redact('the key passphrase is hunter2'), 'the key passphrase is ***');
  });
  it('accepts any `rclone <parameter>` key for on-the-fly remotes', () => {
    const c = load('protocol = rclone\nhost address = remote\nrclone type = sftp\nrclone shell_type = unix').clients[0]!;
    assert.equal(c.extra['rclone shell_type'], 'unix');
  });
  it('takes keyfile as the SSH key for sftp and rclone remotes, with no TLS client certificate warning', () => {
    const loadWarnings = (body: string) => resolveConfig(parseConfigText(`[a]\nlocal path = /tmp/a\n${body}\n`), { file: FILE, home: '/home/u', cwd: '/work', hostname: 'h', fs: fakeFs({ '/cfg/id_ed25519': 'key' }), secrets: new SecretRegistry() });
    for (const body of ['protocol = sftp\nhost address = box.example.org', 'protocol = rclone\nrclone type = sftp\nhost address = 127.0.0.1']) {
      const loaded = loadWarnings(`${body}\nkeyfile = /cfg/id_ed25519`);
      assert.equal(loaded.clients[0]?.keyfile, '/cfg/id_ed25519');
      assert.deepEqual(loaded.warnings.filter((m) => m.includes('client certificate')), [], body);
    }
    const ftps = loadWarnings('protocol = ftps\nhost address = ftp.example.org\nkeyfile = /cfg/id_ed25519');
    assert.ok(ftps.warnings.some((m) => m.includes('client certificate')), ftps.warnings.join('\n'));
  });
  it('keeps the port key for an on-the-fly rclone remote built from host and port', () => {
    const c = load('protocol = rclone\nrclone type = sftp\nhost address = 127.0.0.1\nport = 2222\nrelay directory = escale').clients[0]!;
    assert.deepEqual([c.protocol, c.host, c.port, c.directory], ['rclone', '127.0.0.1', 2222, 'escale']);
  });
});
