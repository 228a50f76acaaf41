import type { MetadataRecord } from '../relay/protocol/records.js';

/** Which question a comparison answers: "is the relay copy newer?" (pull) or "is the local file newer?" (push). */
export type CompareDirection = 'remote-newer' | 'local-newer';

/** The local side of a comparison: integer-second mtime and, when known, the plaintext checksum. */
export interface CompareLocal {
  readonly mtimeSec: number;
  readonly checksum?: string;
}

/** Which change detectors are enabled (`modification time` and `checksum` options). */
export interface CompareOptions {
  readonly useMtime: boolean;
  readonly useChecksum: boolean;
  /** Index flavour: equal mtimes mean "not modified" before anything else (step 0). */
  readonly indexFlavour?: boolean;
}

/** Outcome of a comparison, with the rule that decided it. */
export interface CompareResult {
  readonly modified: boolean;
  /** Which step of sync-rules.md R3.2 decided (0–6). */
  readonly step: 0 | 1 | 2 | 3 | 4 | 5 | 6;
  /** Which step decided, in words, for log lines and dry-run output. */
  readonly why: string;
  /**
   * Set when the checksums are equal but the mtimes differ: the original resets the local mtime to
   * the relay timestamp (a side effect on user files, sync-rules.md B-4); callers decide whether to do it.
   */
  readonly resetLocalMtimeTo?: number;
}

/**
 * Compares a local file with a relay metadata record (sync-rules.md R3.2, steps 0–6): whether the
 * side named by `direction` is newer, i.e. whether a transfer in that direction is warranted.
 */
export function compareWithRecord(
  direction: CompareDirection,
  local: CompareLocal | undefined,
  record: MetadataRecord | undefined,
  options: CompareOptions,
): CompareResult {
  // why: a disabled detector behaves as if the value were unknown on both sides; this is what
  // makes "timestamps off, checksums on" never consider a differing file newer (sync-rules.md R3.2).
  const tR = options.useMtime ? record?.timestamp : undefined;
  const cR = options.useChecksum ? record?.checksum : undefined;
  const cL = options.useChecksum ? local?.checksum : undefined;
  const mL = local === undefined ? undefined : Math.trunc(local.mtimeSec);

  if (options.indexFlavour === true && mL !== undefined && tR !== undefined && mL === tR) {
    return { modified: false, step: 0, why: 'equal mtimes (index flavour)' };
  }
  if (mL === undefined) return { modified: true, step: 1, why: 'no local file' };
  if (cR !== undefined && cL !== undefined && cR === cL) {
    if (tR !== undefined && mL !== tR) return { modified: false, step: 2, why: 'identical content', resetLocalMtimeTo: tR };
    return { modified: false, step: 2, why: 'identical content' };
  }
  if (tR === undefined) return { modified: false, step: 3, why: 'undetermined: no relay timestamp' };
  if (cR !== undefined && cL !== undefined && mL === tR) {
    return { modified: true, step: 4, why: 'different content with equal mtimes (anomaly)' };
  }
  if (direction === 'remote-newer') {
    return mL < tR ? { modified: true, step: 5, why: 'relay copy is newer' } : { modified: false, step: 5, why: 'relay copy is not newer' };
  }
  return tR < mL ? { modified: true, step: 6, why: 'local file is newer' } : { modified: false, step: 6, why: 'local file is not newer' };
}
