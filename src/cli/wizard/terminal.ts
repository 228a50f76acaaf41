/**
 * The wizard's Prompter on standard input and output: line by line with node:readline, so that it
 * works on a terminal and on a pipe (scripted answers). On a terminal, secret answers are read
 * without echo; on a pipe nothing is echoed anyway. Ctrl+C and the end of input end the wizard.
 */
import { createInterface, type Interface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Output } from '../output.js';
import type { Prompter } from './ask.js';

/** A Prompter that can be paused (to run `rclone config` on the terminal) and must be closed. */
export interface TerminalPrompter extends Prompter {
  readonly isTerminal: boolean;
  pause(): void;
  resume(): void;
  close(): void;
}

/** Reads answers from `input` (a terminal or a pipe) and prints prompts and messages on `output`. */
export function terminalPrompter(input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown }, output: Output): TerminalPrompter {
  const isTerminal = input.isTTY === true;
  let muted = false;
  // why: on a terminal readline echoes what is typed through this stream; muting it hides a password.
  const echo = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      if (!muted) output.out(chunk.toString());
      callback();
    },
  });
  const rl: Interface = createInterface({ input, ...(isTerminal ? { output: echo, terminal: true } : { terminal: false }) });
  const lines: string[] = [];
  let ended = false;
  let waiting: ((line: string | undefined) => void) | undefined;
  rl.on('line', (line) => {
    if (waiting !== undefined) {
      const wake = waiting;
      waiting = undefined;
      wake(line);
    } else lines.push(line);
  });
  rl.on('close', () => {
    ended = true;
    waiting?.(undefined);
    waiting = undefined;
  });
  // why: Ctrl+C ends the wizard like the end of input: nothing is written.
  rl.on('SIGINT', () => {
    output.out('\n');
    rl.close();
  });
  const nextLine = (): Promise<string | undefined> => {
    const line = lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (ended) return Promise.resolve(undefined);
    return new Promise((resolve) => (waiting = resolve));
  };

  return {
    isTerminal,
    async ask(prompt, { secret }) {
      if (isTerminal) {
        rl.setPrompt(prompt);
        rl.prompt();
        muted = secret;
      } else output.out(prompt);
      const line = await nextLine();
      muted = false;
      // why: a pipe echoes nothing and a muted terminal swallowed the newline; end the prompt line.
      if (!isTerminal || secret) output.out('\n');
      return line;
    },
    say(text) {
      output.out(`${text}\n`);
    },
    pause() {
      rl.pause();
      input.setRawMode?.(false);
    },
    resume() {
      input.setRawMode?.(true);
      rl.resume();
    },
    close() {
      rl.close();
    },
  };
}
