import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SecretRegistry, redact } from './redact.js';

describe('redact', () => {
  it('replaces every occurrence of every secret, longest first', () => {
    assert.equal(redact('pw=abc123 again abc123', ['abc123']), 'pw=*** again ***');
    assert.equal(redact('key abcdef', ['abc', 'abcdef']), 'key ***');
  });

  it('handles raw key bytes and ignores empty secrets', () => {
    assert.equal(redact('k=raw-key', [Buffer.from('raw-key\n')]), 'k=***');
    assert.equal(redact('nothing', ['']), 'nothing');
  });

  it('masks passwords inside URLs even when they are not registered', () => {
    assert.equal(redact('GET ftp://alice:pw@host/x failed', []), 'GET ftp://alice:***@host/x failed');
  });

  it('keeps a registry of secrets', () => {
    const secrets = new SecretRegistry();
    secrets.add('hunter22');
    secrets.add(undefined);
    assert.equal(secrets.redact('login hunter22'), 'login ***');
    secrets.clear();
    assert.equal(secrets.size, 0);
  });
});
