/**
 * `escale -i` / `escale -c FILE -i` / `--interactive`: runs the configuration wizard on the
 * terminal (or on scripted answers piped to stdin), then writes everything at once.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigDocument } from '../../config/edit.js';
import { homeFolder } from '../../config/load.js';
import { expandHome } from '../../config/values.js';
import { EscaleError } from '../../core/errors.js';
import { EXIT, type Output } from '../output.js';
import { WizardAborted } from './ask.js';
import { applyPlan, nodeWizardEnv, readConfigFile } from './apply.js';
import { runWizardFlow } from './flow.js';
import { importDestination } from './import.js';
import { terminalPrompter } from './terminal.js';

/** Fails before any question when the file (or the folder that will hold it) cannot be written. */
async function assertWritable(file: string): Promise<void> {
  let target = file;
  for (;;) {
    try {
      await access(target, constants.W_OK);
      return;
    } catch (error) {
      const parent = dirname(target);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === target) {
        throw new EscaleError('PermissionDenied', `cannot write '${file}'; choose another file with '-c FILE'`, { path: file, cause: error });
      }
      target = parent;
    }
  }
}

/** Runs the wizard on `-c FILE` (created if missing) or the default configuration file; returns the exit code. */
export async function runWizard(explicit: string | undefined, output: Output, input: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const file = explicit === undefined ? importDestination(undefined) : resolve(process.cwd(), expandHome(explicit, homeFolder()));
  const { text, prior } = await readConfigFile(file);
  const problems = ConfigDocument.problems(text);
  if (problems.length > 0) {
    throw new EscaleError('Config', `cannot edit '${file}' before its syntax errors are fixed:\n${problems.map((p) => `${file}:${p.line}: ${p.message}`).join('\n')}`, { file });
  }
  await assertWritable(file);
  const prompter = terminalPrompter(input, output);
  try {
    const plan = await runWizardFlow(prompter, nodeWizardEnv(file, prompter.isTerminal ? prompter : undefined), text, prior === null);
    await applyPlan(plan, prior);
    output.out(`Configuration written to '${file}' (${plan.sections.map((s) => `[${s}]`).join(', ')}).\n`);
    for (const f of plan.secretFiles) output.out(`Credential file written: '${f.path}' (mode 0600).\n`);
    for (const k of [...plan.keyFiles.map((f) => f.path), ...plan.keyCopies.map((f) => f.to)]) {
      output.out(`Key file written: '${k}' (mode 0600); every client of the relay needs an exact copy, sent over a safe channel.\n`);
    }
    output.out(`Check it with 'escale -c ${file} --check', then start it with 'escale -c ${file}'.\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof WizardAborted) throw new EscaleError('Aborted', 'the wizard was interrupted; nothing was written');
    throw error;
  } finally {
    prompter.close();
  }
}
