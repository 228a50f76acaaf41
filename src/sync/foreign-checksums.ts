import type { Logger } from '../core/log.js';
import { ReportOnce } from '../core/report-once.js';
import { createChecksum } from '../local/checksum.js';
import type { MetadataRecord } from '../relay/protocol/records.js';

/** The hash family a hex digest of this length most likely comes from (records hold only the digest). */
const FAMILIES: ReadonlyMap<number, string> = new Map([
  [32, 'md5'],
  [40, 'sha1'],
  [56, 'sha224'],
  [64, 'sha256'],
  [96, 'sha384'],
  [128, 'sha512'],
]);

/** What a hex digest of `length` digits suggests, for messages. */
export function digestFamily(length: number): string {
  const family = FAMILIES.get(length);
  return family === undefined ? `an unknown algorithm (${length} hex digits)` : `${family} (${length} hex digits)`;
}

/**
 * Records whose checksum another algorithm made (a pusher configured with `checksum = sha1` when
 * this client uses sha512): relay records hold only a hex digest, and a digest whose length cannot
 * come from this client's algorithm can never equal one of its own. Such a record is seen by this
 * client's decisions without its checksum (`view`): files are compared by pusher and timestamp, as
 * escale 0.7 compares them when checksums differ, and a download is not checked against a digest it
 * can never match (it would fail every time as corrupt). The record as read is kept for writing back
 * (`original`): what is on the relay is never changed. The first such record of each pusher is
 * reported once, with both algorithms and the fix.
 */
export class ForeignChecksums {
  private readonly length: number | undefined;
  private readonly originals = new WeakMap<MetadataRecord, MetadataRecord>();
  private readonly reported = new ReportOnce();

  /** `algorithm`: this client's `checksum` algorithm, or null when checksums are off (records are then never changed). */
  constructor(
    private readonly algorithm: string | null,
    private readonly logger: Logger,
  ) {
    this.length = algorithm === null ? undefined : createChecksum(algorithm).digest('hex').length;
  }

  /** `record` as this client's decisions see it: without a checksum of another algorithm (reported once per pusher). */
  view(record: MetadataRecord): MetadataRecord {
    const digest = record.checksum;
    if (this.length === undefined || digest === undefined || digest.length === this.length) return record;
    const pusher = record.pusher ?? '(unknown)';
    if (this.reported.isNew(pusher, String(digest.length))) {
      this.logger.warning(
        `files pushed by '${pusher}' carry checksums of ${digestFamily(digest.length)}, not of this client's algorithm ${String(this.algorithm)} (${this.length} hex digits): ` +
          `they are compared by modification time instead (as escale 0.7 does) and their downloads cannot be checked against their checksums; ` +
          `set the same 'checksum' option on every client of this relay (here, or on '${pusher}')`,
      );
    }
    const { checksum: _foreign, ...seen } = record;
    this.originals.set(seen, record);
    return seen;
  }

  /** The record as read from the relay for a record `view` returned (itself for any other). */
  original(record: MetadataRecord): MetadataRecord {
    return this.originals.get(record) ?? record;
  }

  /** `records` with each one seen through `view`; the same map when none changes. */
  viewAll<K>(records: ReadonlyMap<K, MetadataRecord>): ReadonlyMap<K, MetadataRecord> {
    if (!this.anyForeign(records.values())) return records;
    return new Map([...records].map(([key, record]) => [key, this.view(record)]));
  }

  private anyForeign(records: Iterable<MetadataRecord>): boolean {
    if (this.length === undefined) return false;
    for (const { checksum } of records) if (checksum !== undefined && checksum.length !== this.length) return true;
    return false;
  }
}
