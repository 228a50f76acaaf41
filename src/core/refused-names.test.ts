import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, memorySink, type LogRecord } from './log.js';
import { RefusedNames } from './refused-names.js';

test('one warning per side, name and reason; a name that comes back after retain is warned about again', () => {
  const records: LogRecord[] = [];
  const names = new RefusedNames(createLogger([memorySink(records)]));
  for (let round = 0; round < 3; round += 1) {
    names.refuse('relay', 'a\\b.txt', 'contains a backslash');
    names.refuse('local', 'a\\b.txt', 'contains a backslash');
    names.refuse('relay', 'caf\udce9.txt', 'is not valid UTF-8');
  }
  assert.deepEqual(records.map((r) => [r.level, r.message]), [
    ['warning', 'not syncing relay file "a\\\\b.txt": the name contains a backslash'],
    ['warning', 'not syncing local file "a\\\\b.txt": the name contains a backslash'],
    ['warning', 'not syncing relay file "caf\\udce9.txt": the name is not valid UTF-8'],
  ]);
  names.retain('relay', (name) => name === 'caf\udce9.txt');
  names.refuse('relay', 'a\\b.txt', 'contains a backslash');
  names.refuse('local', 'a\\b.txt', 'contains a backslash');
  names.refuse('relay', 'caf\udce9.txt', 'is not valid UTF-8');
  assert.equal(records.length, 4, 'only the relay name that was forgotten is reported again');
  names.refuse('relay', 'caf\udce9.txt', 'has another problem');
  assert.equal(records.length, 5, 'a new reason is news');
});
