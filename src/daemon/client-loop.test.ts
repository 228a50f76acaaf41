import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EscaleError } from '../core/errors.js';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import { AdaptiveClock } from './adaptive-clock.js';
import { runClientLoop, type RoundRunner } from './client-loop.js';

type Step = { transferred?: number; failed?: number } | Error;

/** A runner that plays the given steps, one per round, then aborts the loop. */
function scripted(steps: Step[], controller: AbortController): RoundRunner & { repairs: number; rounds: number } {
  const runner = {
    repairs: 0,
    rounds: 0,
    async round() {
      const step = steps[runner.rounds];
      runner.rounds += 1;
      if (runner.rounds >= steps.length) controller.abort();
      if (step instanceof Error) throw step;
      return { transferred: step?.transferred ?? 0, failed: step?.failed ?? 0, deferred: 0 };
    },
    requestRepair() {
      runner.repairs += 1;
    },
  };
  return runner;
}

function harness(steps: Step[], options: { once?: boolean; maxPermanentFailures?: number } = {}) {
  const controller = new AbortController();
  const runner = scripted(steps, controller);
  const records: LogRecord[] = [];
  const sleeps: number[] = [];
  const run = runClientLoop({
    runner,
    clock: new AdaptiveClock(10),
    logger: createLogger([memorySink(records)]),
    signal: controller.signal,
    sleep: async (seconds) => {
      sleeps.push(seconds);
    },
    ...options,
  });
  return { run, runner, records, sleeps };
}

test('an idle first round says the repository is up to date; sleeps grow while idle and reset after a transfer', async () => {
  const { run, records, sleeps } = harness([{}, {}, {}, {}, {}, {}, { transferred: 1 }, {}]);
  const result = await run;
  assert.equal(result.failed, false);
  assert.equal(records.some((r) => r.level === 'info' && r.message === 'repository is up to date'), true);
  assert.deepEqual(sleeps.slice(0, 6).map((s) => Number(s.toFixed(1))), [5, 5, 5, 5.1, 5.6, 7.5]);
  assert.equal(sleeps[6], 5, 'reset after the round that transferred');
});

test('transient errors are retried after a pause, forever, with repair requested each time', async () => {
  const transient = new EscaleError('Unavailable', 'connection reset');
  const { run, runner, records } = harness([transient, transient, transient, transient, transient, transient, transient, {}]);
  const result = await run;
  assert.equal(result.fatal, undefined);
  assert.equal(runner.rounds, 8);
  assert.equal(runner.repairs, 7);
  assert.equal(records.filter((r) => r.level === 'warning' && r.message.includes('connection reset')).length, 7);
});

test('a permanent error repeated maxPermanentFailures times makes the client give up with a clear line', async () => {
  const denied = new EscaleError('PermissionDenied', "login refused by 'ftp://relay'");
  const { run, runner, records } = harness([denied, denied, denied, {}], { maxPermanentFailures: 3 });
  const result = await run;
  assert.equal(runner.rounds, 3);
  assert.equal(result.failed, true);
  assert.equal(result.fatal, denied);
  assert.equal(records.some((r) => r.level === 'critical' && r.message.includes('giving up after 3 failed rounds')), true);
});

test('different permanent errors in a row do not add up', async () => {
  const a = new EscaleError('PermissionDenied', 'a');
  const b = new EscaleError('Protocol', 'b');
  const { run } = harness([a, b, a, b, {}], { maxPermanentFailures: 2 });
  assert.equal((await run).fatal, undefined);
});

test('--once runs one round; a failed file makes it fail', async () => {
  const ok = harness([{ transferred: 2 }, {}], { once: true });
  assert.deepEqual(await ok.run, { rounds: 1, failed: false });
  const bad = harness([{ failed: 1 }, {}], { once: true });
  assert.equal((await bad.run).failed, true);
  const thrown = harness([new EscaleError('Protocol', 'garbled'), {}], { once: true });
  assert.equal((await thrown.run).failed, true);
});
