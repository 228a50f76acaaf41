import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigDocument } from './edit.js';
import { loadConfigText } from './load.js';

const TEXT = [
  '# global settings',
  'refresh = 20',
  '',
  '[alice]',
  '# the folder',
  'Path: /data/alice',
  'relay address = ftp://ftp.example.org/old',
  'host address = shadowed.example.org',
  'exclude = a,',
  '    b',
  '; end of alice',
  '',
  '[bob]',
  'local path = /data/bob',
  '',
].join('\n');

describe('ConfigDocument', () => {
  it('gives the text back unchanged when nothing is edited', () => {
    assert.equal(ConfigDocument.parse(TEXT).toString(), TEXT);
    assert.equal(ConfigDocument.parse('a = 1\r\n[x]\r\nb = 2\r\n').toString(), 'a = 1\r\n[x]\r\nb = 2\r\n');
  });

  it('replaces a value in place under the first alias present, keeping its spelling, and drops shadowed aliases', () => {
    const doc = ConfigDocument.parse(TEXT);
    doc.set('alice', ['local path', 'path'], '/new/alice');
    doc.set('alice', ['host address', 'relay address'], 'ftp.example.org');
    const text = doc.toString();
    assert.match(text, /^Path: \/new\/alice$/m);
    assert.match(text, /^host address = ftp\.example\.org$/m);
    assert.doesNotMatch(text, /relay address/);
    assert.match(text, /^# the folder$/m);
    assert.match(text, /^; end of alice$/m);
    assert.match(text, /^exclude = a,\n {4}b$/m);
  });

  it('adds a missing key after the last setting of the section, before its trailing comments', () => {
    const doc = ConfigDocument.parse(TEXT);
    doc.set('alice', ['mode'], 'download');
    doc.set('bob', ['mode'], 'upload');
    const lines = doc.toString().split('\n');
    assert.equal(lines[lines.indexOf('    b') + 1], 'mode = download');
    assert.equal(lines[lines.indexOf('local path = /data/bob') + 1], 'mode = upload');
    assert.equal(doc.get('bob', ['mode'])?.value, 'upload');
  });

  it('removes a multi-line value entirely', () => {
    const doc = ConfigDocument.parse(TEXT);
    doc.remove('alice', ['exclude']);
    assert.doesNotMatch(doc.toString(), /exclude|^ {4}b$/m);
    assert.equal(doc.get('alice', ['exclude']), undefined);
    assert.equal(doc.get('alice', ['relay address'])?.value, 'ftp://ftp.example.org/old');
  });

  it('doubles % so that the reader gives the value back, and refuses line breaks', () => {
    const doc = ConfigDocument.parse('[a]\nlocal path = /tmp/a\nprotocol = file\nrelay path = /tmp/r\n');
    doc.set('a', ['client name'], 'me 100%');
    assert.match(doc.toString(), /^client name = me 100%%$/m);
    assert.equal(doc.get('a', ['client name'])?.value, 'me 100%');
    assert.equal(loadConfigText(doc.toString(), '/x/e.conf', { hostname: 'h' }).clients[0]?.clientName, 'me 100%');
    assert.throws(() => doc.set('a', ['client name'], 'x\ny = 1'));
  });

  it('lists sections, reads globals, replaces and appends sections', () => {
    const doc = ConfigDocument.parse(TEXT);
    assert.deepEqual(doc.sectionNames(), ['alice', 'bob']);
    assert.equal(doc.getGlobal(['refresh'])?.value, '20');
    doc.replaceSection('alice', [['local path', '/z']]);
    doc.addSection('carol', [['local path', '/c']]);
    const text = doc.toString();
    assert.match(text, /\[alice\]\nlocal path = \/z\n; end of alice\n\n\[bob\]/);
    assert.match(text, /^# global settings$/m);
    assert.match(text, /\n\n\[carol\]\nlocal path = \/c\n$/);
    assert.throws(() => doc.addSection('bob', []), /already exists/);
  });

  it('refuses text with syntax errors', () => {
    assert.throws(() => ConfigDocument.parse('[a]\nno delimiter here\n'), /line 2/);
  });
});
