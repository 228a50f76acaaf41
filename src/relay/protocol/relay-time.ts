import type { Logger } from '../../core/log.js';
import type { RelayPath } from '../../core/relpath.js';
import { ReportOnce } from '../../core/report-once.js';
import type { MetadataRecord } from './records.js';
import type { Backend } from '../backend.js';
import { CLOCK_MARGIN_MS, formatDuration, probeRelayClock, type JudgedEntry, type StaleVerdict } from '../relay-clock.js';

/*
 * The protocol's judgments about time on the relay: when a lock (or a file that `lock timeout`
 * guards) has expired, and which relay dates are too far in the future to be right.
 */

/** What `judgeExpiry` may use besides the entry. */
export interface ExpiryOptions {
  /** Content of the lock as read (or a digest of it), so that a rewrite of the same size counts as progress. */
  readonly contentKey?: string;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

/**
 * Judges whether the relay file `path` (a lock, or orphan data that `lock timeout` guards), as
 * listed or stat'ed in `entry`, has expired: left for longer than `lockTimeoutSec` by the relay's
 * clock, or unchanged that long while this client watched it (`RelayClock.judge`). When `entry`
 * has an mtime and the relay's clock is not known yet, it is learned first with one probe
 * (`probeRelayClock`). Never by the local wall clock, so a lock is never broken early because this
 * machine's clock is ahead. `lockTimeoutSec` null: never expires. The verdict's evidence belongs in
 * the log line of any removal.
 */
export async function judgeExpiry(backend: Backend, path: RelayPath, entry: JudgedEntry, lockTimeoutSec: number | null, options: ExpiryOptions = {}): Promise<StaleVerdict> {
  if (lockTimeoutSec === null) return { stale: false, evidence: 'the lock timeout is off' };
  if (entry.mtimeMs !== undefined && !backend.clock.known) {
    await probeRelayClock(backend, { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.logger === undefined ? {} : { logger: options.logger }) });
  }
  return backend.clock.judge(path, entry, lockTimeoutSec * 1000, options.contentKey);
}

/** The log text of a verdict that removes something: `<evidence> (lock timeout N s)`. */
export function expiryEvidence(verdict: StaleVerdict, lockTimeoutSec: number | null): string {
  return `${verdict.evidence} (lock timeout ${lockTimeoutSec ?? 'off'} s)`;
}

/**
 * The warnings about clocks a client gives (each once per subject and state): its own clock
 * differs from the relay's by more than CLOCK_MARGIN_MS, or a record pushed by another client is
 * dated further than that ahead of the relay's clock, which names the pusher whose clock is
 * probably ahead. A record that looks ahead while the relay's clock is not known makes it learned
 * first (one probe), so that a client whose own clock is behind does not accuse the others; where
 * it stays unknown, the local clock is the reference.
 */
export class ClockWarnings {
  private readonly once = new ReportOnce();

  constructor(
    private readonly backend: Backend,
    /** This machine's wall clock (ms since the epoch). */
    private readonly now: () => number,
    private readonly logger: Logger,
    /** This client's name: its own records are covered by `checkOwnClock`, never a warning about a pusher. */
    private readonly client?: string,
  ) {}

  /** Warns once (per state: ahead, behind) when this machine's clock is off the relay's by more than the margin. No I/O. */
  checkOwnClock(): void {
    if (!this.backend.clock.known) return;
    const offset = this.backend.clock.offsetOf(this.now());
    if (offset === undefined) return;
    const state = offset.min > CLOCK_MARGIN_MS ? 'ahead' : offset.max < -CLOCK_MARGIN_MS ? 'behind' : 'agrees';
    if (state === 'agrees') {
      if (this.once.clear('own clock')) this.logger.info("this machine's clock agrees with the relay's again");
      return;
    }
    if (!this.once.isNew('own clock', state)) return;
    const about = formatDuration(Math.abs((offset.min + offset.max) / 2));
    this.logger.warning(
      `this machine's clock is about ${about} ${state} of the relay's (more than the ${formatDuration(CLOCK_MARGIN_MS)} margin): `
      + 'files changed here carry dates that other clients see as wrong; set the clock right (NTP). '
      + "Stale locks and upload temporaries are still judged by the relay's clock.",
    );
  }

  /** Warns once per pusher about the records (by relay path) dated further ahead than the margin. */
  async checkRecords(records: Iterable<readonly [string, MetadataRecord]>, signal?: AbortSignal): Promise<void> {
    let suspects = [...records].filter(([, record]) => record.pusher !== this.client && this.aheadMs(record) > CLOCK_MARGIN_MS);
    if (suspects.length === 0) return;
    if (!this.backend.clock.known) {
      await probeRelayClock(this.backend, { logger: this.logger, ...(signal === undefined ? {} : { signal }) });
      this.checkOwnClock();
      suspects = suspects.filter(([, record]) => this.aheadMs(record) > CLOCK_MARGIN_MS);
    }
    const known = this.backend.clock.known;
    for (const [path, record] of suspects) {
      const pusher = record.pusher ?? '(no pusher named)';
      if (!this.once.isNew(`pusher ${pusher}`, 'ahead')) continue;
      const of = known ? "the relay's clock" : "this machine's clock (the relay's is not known)";
      this.logger.warning(
        `'${path}' was pushed by '${pusher}' dated ${new Date((record.timestamp ?? 0) * 1000).toISOString()}, ${formatDuration(this.aheadMs(record))} ahead of ${of}: `
        + `the clock of '${pusher}' is probably ahead (or the file is dated in the future)`,
      );
    }
  }

  /** How far a record's timestamp is ahead of the relay's latest possible now (the local now while unknown). */
  private aheadMs(record: MetadataRecord): number {
    if (record.timestamp === undefined) return Number.NEGATIVE_INFINITY;
    return record.timestamp * 1000 - (this.backend.clock.now()?.latest ?? this.now());
  }
}
