import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EscaleError } from '../../core/errors.js';
import { createCipher } from '../../crypto/cipher.js';
import { escalectlMain } from '../escalectl.js';
import { capture } from './command-test-kit.js';

test('escalectl genkey creates a private key file, prints the configuration lines, and never overwrites', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'escale-genkey-'));
  try {
    const file = join(dir, 'home.passphrase');
    const output = capture();
    assert.equal(await escalectlMain(['genkey', file, '--algorithm', 'blowfish'], output), 0);
    const key = readFileSync(file);
    assert.match(key.toString('latin1'), /^[A-Za-z0-9_-]{43}=$/);
    if (process.platform !== 'win32') assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(output.stdout, /^ {2}encryption = blowfish$/m);
    assert.ok(output.stdout.split('\n').includes(`  passphrase = ${file}`), output.stdout);
    assert.match(output.stdout, /safe channel/);
    assert.equal(output.stdout.includes(key.toString('latin1')), false, 'the key itself is never printed');
    assert.ok(createCipher({ algorithm: 'fernet', key }, { now: () => 0 }), 'the same file is a valid Fernet key');

    writeFileSync(join(dir, 'taken'), 'precious');
    await assert.rejects(escalectlMain(['genkey', join(dir, 'taken')], capture()), (e: unknown) => e instanceof EscaleError && e.code === 'AlreadyExists' && /already exists/.test(e.message));
    assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'precious');
    await assert.rejects(escalectlMain(['genkey', join(dir, 'x'), '--algorithm', 'plain'], capture()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
