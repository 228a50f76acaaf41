import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, fileSink, formatRecord, memorySink, parseLogLevel, terminalSink, type LogRecord } from './log.js';
import { SecretRegistry } from './redact.js';

const fixed = new Date(2026, 10, 25, 21, 53, 19, 123);

describe('logger', () => {
  it('stamps records with the injected clock and names children', () => {
    const records: LogRecord[] = [];
    const logger = createLogger([memorySink(records)], 'escale', 'info', () => fixed);
    logger.debug('hidden');
    logger.child('alice').warning('careful');
    assert.deepEqual(records, [{ time: fixed, level: 'warning', name: 'escale.alice', message: 'careful' }]);
  });

  it('formats lines as date,ms LEVEL name: message', () => {
    assert.equal(formatRecord({ time: fixed, level: 'info', name: 'escale.alice', message: 'up to date' }), '2026-11-25 21:53:19,123 INFO escale.alice: up to date');
  });

  it('parses level names', () => {
    assert.equal(parseLogLevel('WARNING'), 'warning');
    assert.equal(parseLogLevel('warn'), 'warning');
    assert.equal(parseLogLevel('loud'), undefined);
  });

  it('filters and redacts terminal lines', () => {
    const lines: string[] = [];
    const secrets = new SecretRegistry();
    secrets.add('s3cret');
    const logger = createLogger([terminalSink({ level: 'info', write: (l) => lines.push(l), secrets })], 'escale', 'debug', () => fixed);
    logger.debug('not shown');
    logger.error('login with s3cret failed');
    assert.deepEqual(lines, ['2026-11-25 21:53:19,123 ERROR escale: login with *** failed\n']);
  });

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
