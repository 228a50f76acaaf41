import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './parse.js';
import { rewriteSection } from './rewrite.js';

const TEXT = [
  '# my escale configuration',
  'log level = INFO',
  'port = 2121',
  '',
  '[alice]',
  '; the relay',
  'Protocol: ftp',
  'relay address   =   old.example.org',
  'host directory = shared',
  '   still the directory',
  'local path = /home/alice/sync',
  '',
  '# next section',
  '[bob]',
  'protocol = ftp',
  'relay address = old.example.org',
  '',
].join('\n');

describe('rewriteSection', () => {
  test('replaces values under the key names already written, keeping comments, spacing and other sections', () => {
    const { text, described } = rewriteSection(TEXT, 'alice', [
      { option: 'protocol', value: 'webdav' },
      { option: 'address', value: 'new.example.org' },
      { option: 'directory', value: 'team' },
    ]);
    const lines = text.split('\n');
    assert.equal(lines[6], 'Protocol: webdav', 'the key as written and its ":" separator stay');
    assert.equal(lines[7], 'relay address   =   new.example.org', 'the spacing around "=" stays');
    assert.equal(lines[8], 'host directory = team');
    assert.ok(!text.includes('still the directory'), 'continuation lines of a replaced value go');
    for (const kept of ['# my escale configuration', '; the relay', '# next section', 'local path = /home/alice/sync']) assert.ok(text.includes(kept), kept);
    assert.ok(text.endsWith('[bob]\nprotocol = ftp\nrelay address = old.example.org\n'), 'the other section is untouched');
    assert.equal(described.length, 3);
    const alice = parseConfigText(text).sections.find((s) => s.name === 'alice');
    assert.equal(alice?.entries.get('relay address')?.value, 'new.example.org');
  });

  test('a missing key is added after the section\'s last setting; a global one is overridden, never edited', () => {
    const { text } = rewriteSection(TEXT, 'alice', [{ option: 'port', value: '8021' }]);
    const lines = text.split('\n');
    assert.equal(lines[2], 'port = 2121', 'the global setting stays');
    assert.equal(lines[lines.indexOf('local path = /home/alice/sync') + 1], 'port = 8021');
    assert.equal(parseConfigText(text).problems.length, 0);
  });

  test('a removed setting loses its lines; an unchanged value changes nothing', () => {
    const { text, described } = rewriteSection(TEXT, 'alice', [
      { option: 'directory', value: undefined },
      { option: 'address', value: 'old.example.org' },
      { option: 'port', value: undefined },
    ]);
    assert.ok(!text.includes('host directory') && !text.includes('still the directory'));
    assert.equal(described.length, 1, 'only the removal is a change');
    assert.equal(rewriteSection(TEXT, 'alice', [{ option: 'address', value: 'old.example.org' }]).text, TEXT);
  });

  test('keeps CRLF line ends and escapes % for the interpolating reader', () => {
    const crlf = TEXT.replaceAll('\n', '\r\n');
    const { text } = rewriteSection(crlf, 'bob', [{ option: 'directory', value: '100%/data' }]);
    assert.ok(!/[^\r]\n/.test(text), 'every line still ends with CRLF');
    assert.ok(text.includes('host directory = 100%%/data\r\n'));
  });

  test('an unknown section is a configuration error', () => {
    assert.throws(() => rewriteSection(TEXT, 'carol', [{ option: 'protocol', value: 'file' }]), /cannot find repository: carol/);
  });
});
