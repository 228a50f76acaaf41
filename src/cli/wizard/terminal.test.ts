import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { terminalPrompter } from './terminal.js';

function capture(): { out: (t: string) => void; err: (t: string) => void; text: () => string } {
  let text = '';
  return { out: (t) => void (text += t), err: (t) => void (text += t), text: () => text };
}

describe('terminalPrompter', () => {
  it('on a terminal, echoes ordinary answers but not secret ones', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => undefined });
    const output = capture();
    const prompter = terminalPrompter(input, output);
    const name = prompter.ask('Username: ', { secret: false });
    input.write('alice\r');
    assert.equal(await name, 'alice');
    const password = prompter.ask('Password: ', { secret: true });
    input.write('Sesame42\r');
    assert.equal(await password, 'Sesame42');
    prompter.close();
    // why: readline redraws the line with ANSI cursor sequences; compare the visible text.
    const visible = output.text().replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g'), '');
    assert.match(visible, /Username: alice\r?\n/);
    assert.match(visible, /Password: \n$/);
    assert.doesNotMatch(output.text(), /Sesame/);
  });

  it('on a pipe, reads lines given before they are asked and returns undefined at the end of input', async () => {
    const input = new PassThrough();
    const output = capture();
    const prompter = terminalPrompter(input, output);
    input.end('one\ntwo\n');
    assert.equal(await prompter.ask('First: ', { secret: false }), 'one');
    assert.equal(await prompter.ask('Second: ', { secret: true }), 'two');
    assert.equal(await prompter.ask('Third: ', { secret: false }), undefined);
    prompter.close();
    assert.equal(output.text(), 'First: \nSecond: \nThird: \n');
  });
});
