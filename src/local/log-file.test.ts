import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../core/log.js';
import { SecretRegistry } from '../core/redact.js';
import { fileSink } from './log-file.js';

const fixed = new Date(2026, 10, 25, 21, 53, 19, 123);

describe('log file sink', () => {
  it('writes a log file and rotates it, keeping N copies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'escale-log-'));
    try {
      const path = join(dir, 'sub', 'escale.log');
      const logger = createLogger([fileSink({ path, rotate: 2, maxBytes: 200, level: 'info', secrets: new SecretRegistry() })], 'escale', 'debug', () => fixed);
      logger.debug('dropped by the file level');
      for (let i = 0; i < 12; i++) logger.info(`message number ${i} with some padding`);
      assert.deepEqual(readdirSync(join(dir, 'sub')).sort(), ['escale.log', 'escale.log.1', 'escale.log.2']);
      const current = readFileSync(path, 'utf8');
      assert.ok(current.length <= 200);
      assert.match(current, /message number 11 /);
      assert.doesNotMatch(readFileSync(`${path}.1`, 'utf8') + current, /dropped/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
