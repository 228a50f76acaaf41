import type { Logger } from './log.js';
import { ReportOnce } from './report-once.js';

/** Where a refused name was found: in the local folder or on the relay. */
export type NameSide = 'local' | 'relay';

/**
 * Warns about names escale does not synchronise, once per side, name and reason: a name that stays
 * on the relay or in the folder is reported when it is first seen (or its reason changes), never
 * once per round. One instance serves a client's local scan and relay protocol, so that a name seen
 * by several readers (an index entry and its archive member) is still reported once. A refused name
 * is a warning, never a failed transfer.
 */
export class RefusedNames {
  readonly #once = new ReportOnce();

  constructor(private readonly logger: Logger) {}

  /** Logs `not syncing <side> file "<name>": the name <problem>` unless it was already said. */
  refuse(side: NameSide, name: string, problem: string): void {
    if (!this.#once.isNew(`${side}:${name}`, problem)) return;
    this.logger.warning(`not syncing ${side} file ${JSON.stringify(name)}: the name ${problem}`);
  }

  /**
   * Forgets the names of `side` that `seen` rejects (they left the folder or the relay), so that a
   * name that comes back is reported again. Call after a listing that saw every name of that side.
   */
  retain(side: NameSide, seen: (name: string) => boolean): void {
    const prefix = `${side}:`;
    this.#once.retain((subject) => !subject.startsWith(prefix) || seen(subject.slice(prefix.length)));
  }
}
