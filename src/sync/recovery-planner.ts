import type { RelPath } from '../core/relpath.js';
import { pageOf, type PageScheme } from '../relay/protocol/pages.js';

// The pure decisions of `escalectl fix` (relay-format.md P7.1, configuration.md C13): which placeholders to write,
// how local files are spread over index pages, and when to print progress. No I/O, no clock.

/**
 * What `fix` does with one local file on a placeholder relay: `write` its placeholder, `keep` the
 * existing one (`-u`), leave a file the relay already `known`s (fast mode), or leave a file whose
 * data is on the relay (`has-data`: the placeholder there describes that data, not our copy).
 */
export type PlaceholderFixOutcome = 'write' | 'keep' | 'known' | 'has-data';

/** One planned placeholder. */
export interface PlaceholderFixStep {
  readonly path: RelPath;
  readonly outcome: PlaceholderFixOutcome;
}

/** Which relay files of one resource the listing showed. */
export interface ListedResource {
  readonly data?: unknown;
  readonly lock?: unknown;
  readonly placeholder?: unknown;
}

/** Inputs of `planPlaceholderFix`. */
export interface PlaceholderFixInput {
  /** The local files to describe, after filters, access modifiers and mode. */
  readonly paths: readonly RelPath[];
  /** The relay listing, by resource. */
  readonly relay: ReadonlyMap<RelPath, ListedResource>;
  /** `-f`: no locks; only files the relay does not know at all (no data, placeholder or lock) get one. */
  readonly fast: boolean;
  /** `-u`: keep existing placeholders. */
  readonly update: boolean;
}

/**
 * Plans the placeholders of a placeholder relay, in path order. Without `fast` the plan is
 * checked again under each file's lock when it is carried out (the listing may be a little old).
 */
export function planPlaceholderFix(input: PlaceholderFixInput): PlaceholderFixStep[] {
  const steps: PlaceholderFixStep[] = [];
  for (const path of [...input.paths].sort(byCodeUnit)) {
    const listed = input.relay.get(path);
    let outcome: PlaceholderFixOutcome;
    if (input.fast) outcome = listed === undefined ? 'write' : 'known';
    else if (listed?.data !== undefined) outcome = 'has-data';
    else if (input.update && listed?.placeholder !== undefined) outcome = 'keep';
    else outcome = 'write';
    steps.push({ path, outcome });
  }
  return steps;
}

/**
 * Spreads local files over the pages of an index relay, in page and path order. With `pages`
 * (`-p`), only those pages are kept, and a requested page without local files maps to no file:
 * its persistent index is then deleted, as the index of an empty page would be.
 */
export function planIndexFix(paths: readonly RelPath[], scheme: PageScheme, pages?: readonly string[]): Map<string, RelPath[]> {
  const wanted = pages === undefined || pages.length === 0 ? undefined : new Set(pages);
  const groups = new Map<string, RelPath[]>();
  for (const page of wanted ?? []) groups.set(page, []);
  for (const path of paths) {
    const page = pageOf(path, scheme);
    if (wanted !== undefined && !wanted.has(page)) continue;
    let group = groups.get(page);
    if (group === undefined) groups.set(page, (group = []));
    group.push(path);
  }
  return new Map([...groups].sort(([a], [b]) => byCodeUnit(a, b)).map(([page, group]) => [page, group.sort(byCodeUnit)]));
}

/** Whether the index flavour prints `progress: n of N files` after file `n` (every file under 1000 files, else every 20th, and the last). */
export function countProgressDue(n: number, total: number): boolean {
  return n === total || total < 1000 || n % 20 === 0;
}

/** Minimum time between two `progress: P%` lines of the placeholder flavour. */
export const PERCENT_PROGRESS_INTERVAL_MS = 5000;

/** The `progress: P%` line after `done` of `total` files (whole percent, rounded down). */
export function percentProgress(done: number, total: number): string {
  return `progress: ${total === 0 ? 100 : Math.floor((100 * done) / total)}%`;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
