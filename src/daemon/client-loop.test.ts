import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EscaleError } from '../core/errors.js';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import { AdaptiveClock } from './adaptive-clock.js';
import { Backoff } from './backoff.js';
import { runClientLoop, type RoundRunner } from './client-loop.js';
import type { RootCheck } from './local-root.js';
import { ClientStatus } from './status-model.js';

type Step = { transferred?: number; failed?: number; failing?: number } | Error;

/** A runner that plays the given steps, one per round, then aborts the loop. */
function scripted(steps: Step[], controller: AbortController, onRound?: () => void): RoundRunner & { repairs: number; rounds: number } {
  const runner = {
    repairs: 0,
    rounds: 0,
    async round() {
      onRound?.();
      const step = steps[runner.rounds];
      runner.rounds += 1;
      if (runner.rounds >= steps.length) controller.abort();
      if (step instanceof Error) throw step;
      return { transferred: step?.transferred ?? 0, failed: step?.failed ?? 0, deferred: 0, failing: step?.failing ?? 0 };
    },
    requestRepair() {
      runner.repairs += 1;
    },
  };
  return runner;
}

function harness(steps: Step[], options: { once?: boolean; backoff?: Backoff; guard?: { check(): Promise<RootCheck> }; status?: ClientStatus; onRound?: () => void } = {}) {
  const controller = new AbortController();
  const { onRound, ...loopOptions } = options;
  const runner = scripted(steps, controller, onRound);
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
    ...loopOptions,
  });
  return { run, runner, records, sleeps };
}

const linesAt = (records: LogRecord[], level: LogRecord['level']): string[] => records.filter((r) => r.level === level).map((r) => r.message);

test('an idle first round says the repository is up to date; sleeps grow while idle and reset after a transfer', async () => {
  const { run, records, sleeps } = harness([{}, {}, {}, {}, {}, {}, { transferred: 1 }, {}]);
  const result = await run;
  assert.equal(result.failed, false);
  assert.equal(records.some((r) => r.level === 'info' && r.message === 'repository is up to date'), true);
  assert.deepEqual(sleeps.slice(0, 6).map((s) => Number(s.toFixed(1))), [5, 5, 5, 5.1, 5.6, 7.5]);
  assert.equal(sleeps[6], 5, 'reset after the round that transferred');
});

test('a client never gives up: 12 rounds failing with the same permanent code are followed by a working round', async () => {
  const denied = new EscaleError('PermissionDenied', "login refused by 'ftp://relay'");
  const { run, runner, records } = harness([...Array.from({ length: 12 }, () => denied), { transferred: 1 }, {}]);
  const result = await run;
  assert.equal(result.fatal, undefined);
  assert.equal(runner.rounds, 14, 'every round ran');
  assert.equal(runner.repairs, 12, 'repair is asked after each failed round');
  assert.equal(records.some((r) => r.level === 'critical'), false, 'nothing says the client gives up');
  assert.match(linesAt(records, 'info').join('\n'), /rounds work again after 12 failed round\(s\)/);
});

test('the pause after failed rounds doubles up to its cap, one line per change of pause, and returns to normal after a success', async () => {
  const unreachable = new EscaleError('Unavailable', 'connect ECONNREFUSED 127.0.0.1:21');
  const { run, sleeps, records } = harness([...Array.from({ length: 8 }, () => unreachable), {}, unreachable, {}], { backoff: new Backoff(10, 80) });
  await run;
  assert.deepEqual(sleeps.slice(0, 8), [10, 20, 40, 80, 80, 80, 80, 80], 'doubling, capped at 80 s');
  assert.equal(sleeps[8], 5, 'a working round goes back to the adaptive clock');
  assert.equal(sleeps[9], 10, 'a new failure starts the back-off from its first step');
  const warnings = linesAt(records, 'warning');
  assert.deepEqual(
    warnings.map((w) => /next attempt in ([\d.]+ s)/.exec(w)?.[1]),
    ['10 s', '20 s', '40 s', '80 s', '10 s'],
    `one line per change of pause:\n${warnings.join('\n')}`,
  );
  assert.match(warnings[3] as string, /the longest pause/);
  assert.match(warnings[0] as string, /round failed \(Unavailable: connect ECONNREFUSED/);
});

test('a non-retryable round failure is an ERROR line; a change of code is logged again', async () => {
  const a = new EscaleError('PermissionDenied', 'a');
  const b = new EscaleError('Protocol', 'b');
  const { run, records } = harness([a, a, b, {}], { backoff: new Backoff(5, 5) });
  assert.equal((await run).fatal, undefined);
  assert.deepEqual(linesAt(records, 'error').map((l) => l.split(' (')[1]?.split(':')[0]), ['PermissionDenied', 'Protocol']);
});

test('an unexpected exception (a bug) is a crash: the loop ends with it, for keep alive to decide', async () => {
  const bug = new TypeError("Cannot read properties of undefined (reading 'path')");
  const { run, runner, records } = harness([{}, bug, {}]);
  const result = await run;
  assert.equal(result.fatal, bug);
  assert.equal(runner.rounds, 2);
  assert.match(linesAt(records, 'critical').join('\n'), /client crashed: TypeError/);
});

test('--once: 0 when everything synced or only refused names remain; failed when a file fails or is still failing, or the round failed', async () => {
  assert.deepEqual(await harness([{ transferred: 2 }, {}], { once: true }).run, { rounds: 1, failed: false });
  assert.equal((await harness([{ failed: 1 }, {}], { once: true }).run).failed, true);
  assert.equal((await harness([{ failing: 1 }, {}], { once: true }).run).failed, true, 'a file in its back-off is still failing');
  assert.equal((await harness([new EscaleError('Protocol', 'garbled'), {}], { once: true }).run).failed, true);
});

test('a paused local root: no round runs, one ERROR per change, checked every round; rounds resume when it is back', async () => {
  const checks: RootCheck[] = [
    { ok: true },
    { ok: false, reason: 'the local folder is missing' },
    { ok: false, reason: 'the local folder is missing' },
    { ok: false, reason: 'the local folder lost its marker' },
    { ok: true },
  ];
  let n = 0;
  const status = new ClientStatus('alice', 'alice');
  const atChecks: string[] = [];
  const guard = {
    check: async (): Promise<RootCheck> => {
      atChecks.push(status.toJSON().state);
      return checks[Math.min(n++, checks.length - 1)] as RootCheck;
    },
  };
  const states: string[] = [];
  const { run, runner, records } = harness([{}, {}, {}], { guard, status, onRound: () => states.push(status.toJSON().state) });
  await run;
  assert.equal(runner.rounds, 3, 'rounds ran only while the root was there');
  assert.equal(n, 6, 'the root was checked before every round');
  assert.deepEqual(linesAt(records, 'error'), ['pausing this client: the local folder is missing', 'pausing this client: the local folder lost its marker']);
  assert.deepEqual(linesAt(records, 'info').filter((l) => l.includes('resuming')), ['the local folder is back; resuming']);
  assert.deepEqual(atChecks, ['starting', 'idle', 'paused', 'paused', 'paused', 'idle'], 'the status shows the pause while it lasts');
  assert.deepEqual(states, ['starting', 'idle', 'idle']);
  assert.equal(status.toJSON().reason, null);
});

test('the status model follows the loop: backing off with its cause, then idle with the last round', async () => {
  const status = new ClientStatus('alice', 'alice');
  const unreachable = new EscaleError('Unavailable', 'relay down');
  const seen: Array<[string, string | null, number | undefined]> = [];
  const onRound = (): void => {
    const json = status.toJSON();
    seen.push([json.state, json.reason, json.backoff?.delaySec]);
  };
  await harness([unreachable, unreachable, { transferred: 1 }, {}], { status, backoff: new Backoff(1, 4), onRound }).run;
  assert.deepEqual(seen, [
    ['starting', null, undefined],
    ['backing off', 'Unavailable: relay down', 1],
    ['backing off', 'Unavailable: relay down', 2],
    ['idle', null, undefined],
  ]);
  const json = status.toJSON();
  assert.equal(json.state, 'idle');
  assert.equal(json.lastRound?.result, 'ok');
  assert.equal(json.lastRound?.transferred, 0);
  assert.equal(json.backoff, null);
  assert.deepEqual(json.recentErrors.map((e) => [e.code, e.message]), [['Unavailable', 'relay down'], ['Unavailable', 'relay down']]);
});
