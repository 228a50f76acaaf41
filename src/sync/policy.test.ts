import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DOWNLOAD_RULES, UPLOAD_RULES, decideDownload, decideUpload } from './policy.js';

test('each decision table has unique rule names and ends with an unconditional default row', () => {
  for (const rules of [DOWNLOAD_RULES, UPLOAD_RULES] as const) {
    const names = rules.map((r) => r.rule);
    assert.equal(new Set(names).size, names.length);
    const last = rules.at(-1);
    assert.ok(last);
    assert.equal(last.outcome, 'skip');
    assert.ok(rules.every((r) => r.doc.length > 0));
  }
});

test('mode wins over every other input', () => {
  const down = decideDownload({ base: 'no-base', mode: 'upload', local: 'absent', relay: 'data+record', access: { write: true }, consumeAllowed: true, registerAllowed: false });
  assert.deepEqual(down, { rule: 'mode', outcome: 'skip' });
  const up = decideUpload({ base: 'no-base', mode: 'download', local: 'newer', relay: 'absent', access: { read: true }, detectorsEnabled: true });
  assert.deepEqual(up, { rule: 'mode', outcome: 'skip' });
});

test('access rules: w- blocks downloads only, r- blocks uploads only', () => {
  assert.equal(decideDownload({ base: 'no-base', mode: 'shared', local: 'absent', relay: 'data+record', access: { read: false }, consumeAllowed: false, registerAllowed: false }).outcome, 'download-new');
  assert.equal(decideDownload({ base: 'no-base', mode: 'shared', local: 'absent', relay: 'data+record', access: { write: false }, consumeAllowed: false, registerAllowed: false }).rule, 'D1');
  assert.equal(decideUpload({ base: 'no-base', mode: 'shared', local: 'present', relay: 'absent', access: { write: false }, detectorsEnabled: true }).outcome, 'upload-new');
  assert.equal(decideUpload({ base: 'no-base', mode: 'shared', local: 'present', relay: 'absent', access: { read: false }, detectorsEnabled: true }).rule, 'r-');
});

test('D3 never yields a relay deletion, whatever the puller rule', () => {
  for (const consumeAllowed of [false, true]) {
    const decision = decideDownload({ base: 'no-base', mode: 'download', local: 'present', relay: 'data-without-record', access: {}, consumeAllowed, registerAllowed: !consumeAllowed });
    assert.deepEqual(decision, { rule: 'D3', outcome: 'leave-without-metadata' });
  }
});

test('D4 consumes only identical or outdated relay copies, and only when allowed', () => {
  const cell = { base: 'no-base' as const, mode: 'shared' as const, relay: 'data+record' as const, access: {}, registerAllowed: false };
  assert.equal(decideDownload({ ...cell, local: 'same', consumeAllowed: true }).outcome, 'consume-duplicate');
  assert.equal(decideDownload({ ...cell, local: 'newer', consumeAllowed: true }).outcome, 'consume-outdated');
  assert.equal(decideDownload({ ...cell, local: 'undetermined', consumeAllowed: true }).outcome, 'skip');
  assert.equal(decideDownload({ ...cell, local: 'same', consumeAllowed: false }).outcome, 'skip');
});

test('D4-register records an identical copy as puller, only when allowed, whatever the access rules', () => {
  const cell = { base: 'no-base' as const, mode: 'download' as const, relay: 'data+record' as const, consumeAllowed: false };
  assert.deepEqual(decideDownload({ ...cell, local: 'same', access: {}, registerAllowed: true }), { rule: 'D4-register', outcome: 'register-puller' });
  assert.equal(decideDownload({ ...cell, local: 'same', access: { write: false }, registerAllowed: true }).outcome, 'register-puller');
  assert.equal(decideDownload({ ...cell, local: 'same', access: {}, registerAllowed: false }).outcome, 'skip');
  for (const local of ['newer', 'older', 'undetermined', 'present'] as const) {
    assert.notEqual(decideDownload({ ...cell, local, access: {}, registerAllowed: true }).outcome, 'register-puller', local);
  }
  for (const relay of ['locked', 'pushed-by-me', 'record-only'] as const) {
    assert.notEqual(decideDownload({ ...cell, relay, local: 'same', access: {}, registerAllowed: true }).outcome, 'register-puller', relay);
  }
  assert.equal(decideDownload({ ...cell, mode: 'upload', local: 'same', access: {}, registerAllowed: true }).outcome, 'skip');
});

test('D3-no-local: data without a readable record is never downloaded as a new file, whatever the mode or puller rule', () => {
  for (const mode of ['download', 'shared', 'conservative'] as const) {
    for (const access of [{}, { read: false }, { write: true }]) {
      const decision = decideDownload({ mode, local: 'absent', relay: 'data-without-record', access, consumeAllowed: true, registerAllowed: true, resendAllowed: true, base: 'no-base' });
      assert.deepEqual(decision, { rule: 'D3-no-local', outcome: 'leave-without-metadata' });
    }
  }
});

test('resend-missing asks only for a consumed record (record-only) this client would download', () => {
  const cell = { mode: 'shared' as const, relay: 'record-only' as const, access: {}, consumeAllowed: false, registerAllowed: true, resendAllowed: true, base: 'no-base' as const };
  assert.deepEqual(decideDownload({ ...cell, local: 'absent' }), { rule: 'resend-missing', outcome: 'request-resend' });
  assert.equal(decideDownload({ ...cell, local: 'older' }).outcome, 'request-resend');
  assert.equal(decideDownload({ ...cell, local: 'conflict' }).outcome, 'request-resend');
  for (const local of ['same', 'newer', 'undetermined'] as const) assert.equal(decideDownload({ ...cell, local }).rule, 'no-data', local);
  assert.equal(decideDownload({ ...cell, local: 'absent', resendAllowed: false }).rule, 'no-data');
  assert.equal(decideDownload({ ...cell, local: 'absent', access: { write: false } }).rule, 'no-data');
  assert.equal(decideDownload({ ...cell, local: 'older', mode: 'conservative' }).rule, 'no-data');
  for (const relay of ['data+record', 'absent', 'unreadable-record', 'locked', 'pushed-by-me'] as const) {
    assert.notEqual(decideDownload({ ...cell, relay, local: 'absent' }).outcome, 'request-resend', relay);
  }
});

test('resend-pending holds an upload unless the local file is newer than the version asked for', () => {
  const cell = { mode: 'shared' as const, relay: 'absent' as const, access: {}, detectorsEnabled: true, resendPending: true, base: 'no-base' as const };
  for (const local of ['older', 'same', 'conflict', 'undetermined'] as const) assert.deepEqual(decideUpload({ ...cell, local }), { rule: 'resend-pending', outcome: 'skip' }, local);
  assert.equal(decideUpload({ ...cell, local: 'newer' }).outcome, 'upload-new');
  assert.equal(decideUpload({ ...cell, local: 'older', resendPending: false }).outcome, 'upload-new');
});
