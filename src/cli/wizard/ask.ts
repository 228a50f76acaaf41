/**
 * Question conventions of the configuration wizard (configuration.md C12), written against an
 * injected Prompter so that the question flow can be driven by scripted answers in tests. A wrong
 * answer is explained and asked again; the end of the input aborts the whole wizard.
 */

/** Reads one answer per prompt and prints messages; the terminal implementation is terminal.ts. */
export interface Prompter {
  /**
   * Prints `prompt` and reads one line (without its newline); undefined at the end of the input.
   * A `secret` answer is read without echo on a terminal and never printed.
   */
  ask(prompt: string, options: { secret: boolean }): Promise<string | undefined>;
  /** Prints one line of text. */
  say(text: string): void;
}

/** Thrown when the input ends (Ctrl+D, end of a pipe) or the user interrupts: nothing is written. */
export class WizardAborted extends Error {
  constructor() {
    super('the wizard was interrupted; nothing was written');
    this.name = 'WizardAborted';
  }
}

/** A free-text question. */
export interface TextQuestion {
  /** The question, starting with a capital letter (`Section name`). */
  text: string;
  /** Shown in brackets; an empty answer takes it. */
  default?: string;
  /** Repeated until non-empty (when there is no default). */
  required?: boolean;
  /** Printed on `?`; `Request help with '?'` is printed before the question. */
  help?: string | (() => string);
  /** Read without echo; the default is never shown (only that there is one). */
  secret?: boolean;
  /** Shown in the brackets instead of the default (which may be a secret). */
  defaultLabel?: string;
  /**
   * Checks a non-empty answer (or the default taken by an empty one); returns why it is wrong, or
   * undefined when it is accepted.
   */
  check?: (answer: string) => string | undefined;
}

/** Shown in the brackets of a secret question that already has a value. */
export const KEEP_SECRET = 'keep the current one';

/** The prompt line of a question (configuration.md C12): `Question: [default] `, `Question (required): `. */
export function promptLine(question: TextQuestion): string {
  const colon = /[?.:!]$/.test(question.text) ? '' : ':';
  if (question.default === undefined && question.required) return `${question.text} (required)${colon} `;
  const shown = question.default === undefined ? '' : (question.defaultLabel ?? (question.secret ? KEEP_SECRET : question.default));
  return `${question.text}${colon} [${shown}] `;
}

/** Asks a question until the answer is acceptable; returns it trimmed ('' when optional and empty). */
export async function askText(prompter: Prompter, question: TextQuestion): Promise<string> {
  if (question.help !== undefined) prompter.say("Request help with '?'");
  for (;;) {
    const raw = await prompter.ask(promptLine(question), { secret: question.secret === true });
    if (raw === undefined) throw new WizardAborted();
    // why: a password may start or end with spaces; everything else is trimmed.
    const answer = question.secret ? raw : raw.trim();
    if (answer === '?' && question.help !== undefined) {
      prompter.say(typeof question.help === 'function' ? question.help() : question.help);
      continue;
    }
    if (answer === '' && (question.default === undefined || question.default === '')) {
      if (question.required) continue;
      return '';
    }
    const chosen = answer === '' ? (question.default as string) : answer;
    const problem = question.check?.(chosen);
    if (problem !== undefined) {
      prompter.say(`  ${problem}`);
      continue;
    }
    return chosen;
  }
}

/** A yes/no question: `[Y/n]` or `[N/y]`; only the first letter of the answer counts. */
export async function askYesNo(prompter: Prompter, text: string, defaultYes: boolean, help?: string): Promise<boolean> {
  if (help !== undefined) prompter.say("Request help with '?'");
  const prompt = `${text}${/[?.:!]$/.test(text) ? '' : ':'} [${defaultYes ? 'Y/n' : 'N/y'}] `;
  for (;;) {
    const raw = await prompter.ask(prompt, { secret: false });
    if (raw === undefined) throw new WizardAborted();
    const answer = raw.trim().toLowerCase();
    if (answer === '?' && help !== undefined) {
      prompter.say(help);
      continue;
    }
    if (answer === '') return defaultYes;
    if (answer.startsWith('y')) return true;
    if (answer.startsWith('n')) return false;
    prompter.say("  answer 'y' (yes) or 'n' (no)");
  }
}

/** Checks that an answer is a whole number in [min, max]. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (answer: string) => string | undefined {
  return (answer) => {
    if (!/^\d+$/.test(answer)) return `expected a whole number, got '${answer}'`;
    const n = Number(answer);
    if (n < min) return `expected at least ${min}, got ${n}`;
    return n > max ? `expected at most ${max}, got ${n}` : undefined;
  };
}
