import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, formatRecord, memorySink, parseLogLevel, terminalSink, type LogRecord } from './log.js';
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
});
