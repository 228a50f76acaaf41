/**
 * The question flow of the configuration wizard (configuration.md C12): from the answers
 * read through a Prompter to the plan of what to write. It writes nothing itself (apply.ts does,
 * at the very end), so an interrupted wizard leaves no file behind.
 */
import type { ConfigDocument } from '../../config/edit.js';
import { RESERVED_SECTION } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import { DEFAULT_SECTION } from '../../config/parse.js';
import { askText, askYesNo, type Prompter } from './ask.js';
import { askClientName, askEncryption, askLogin, askMode, askPullerCount, askRefresh } from './common.js';
import { askFolder, askServiceRelay, displayAddress, protocolProblem, rcloneHelper, readAddress, SERVICES, usesRclone, wantsIndex, type RelayAnswer } from './relay.js';
import { keysOf, WizardState, type WizardEnv, type WizardPlan } from './state.js';

/** Why a section name cannot be used, or undefined. */
export function sectionNameProblem(name: string): string | undefined {
  if (name === DEFAULT_SECTION) return `'${DEFAULT_SECTION}' is the name of the global settings; choose another name`;
  if (name === RESERVED_SECTION) return `'${RESERVED_SECTION}' is a reserved name; choose another name`;
  if (/[[\]]/.test(name)) return "a section name cannot contain '[' or ']'";
  return undefined;
}

/**
 * Runs the whole wizard on the text of the configuration file (empty for a new file) and returns
 * what to write. Throws WizardAborted when the input ends, and Error when the text has syntax
 * errors (the wizard does not guess how to repair them).
 */
export async function runWizardFlow(prompter: Prompter, env: WizardEnv, text: string, isNew: boolean): Promise<WizardPlan> {
  const state = new WizardState(prompter, env, text);
  state.say(isNew ? `Creating new configuration file '${env.configFile}'` : `Editing configuration file '${env.configFile}'`);
  for (;;) {
    let name: string | undefined;
    const existing = state.doc.sectionNames();
    if (existing.length > 0) {
      const list = ['Existing sections:', ...existing.map((s) => `\t'${s}'`), 'Type the name of a section to edit it, or a new name to add one. Prefer ASCII names.'].join('\n');
      state.say(list);
      name = await askText(prompter, { text: 'Section name', required: true, help: list, check: sectionNameProblem });
    }
    if (await askYesNo(prompter, 'Run in simplified mode', true)) {
      await simplifiedMode(state, name);
      break;
    }
    if (name !== undefined && state.doc.hasSection(name)) await editSection(state, name);
    else await newSection(state, name);
    if (!(await askYesNo(prompter, 'Do you want to add/edit another section?', false))) break;
  }
  for (const section of state.sections) {
    const problem = state.problemOf(section);
    // why: every answer was checked, but an edited section may keep a wrong setting the wizard does not ask about.
    if (problem !== undefined) throw new EscaleError('Config', `section [${section}] would not load: ${problem}; nothing was written (fix that setting by hand, then run the wizard again)`, { file: env.configFile });
  }
  return state.plan();
}

/** `Path of your local repository`, made absolute and planned for creation (configuration.md C12). */
async function askLocalPath(state: WizardState, section: string | undefined): Promise<string> {
  return askFolder(state, 'Path of your local repository', section === undefined ? undefined : state.get(section, 'localPath'));
}

/** The settings every new section gets at the end (configuration.md C12). */
function finishNewSection(state: WizardState, section: string, protocol: string, downloadOnly: boolean): void {
  if (wantsIndex(protocol)) {
    state.set(section, 'index', '1');
    if (downloadOnly) state.set(section, 'pullOverwrite', 'on');
    else state.set(section, 'maxPageSize', '200MB');
  }
  state.set(section, 'checksumCache', 'on');
}

/** Simplified mode (configuration.md C12): a menu of services and the fewest questions; the section is rebuilt from scratch. */
async function simplifiedMode(state: WizardState, given: string | undefined): Promise<void> {
  const { prompter } = state;
  const localPath = await askLocalPath(state, given !== undefined && state.doc.hasSection(given) ? given : undefined);
  state.say('Choose a number from below:');
  SERVICES.forEach((s, i) => state.say(`${String(i + 1).padStart(2)} ${s.label}`));
  const choice = await askText(prompter, {
    text: 'Service',
    required: true,
    check: (a) => (/^\d+$/.test(a) && Number(a) >= 1 && Number(a) <= SERVICES.length ? undefined : `choose a number from 1 to ${SERVICES.length}`),
  });
  const service = SERVICES[Number(choice) - 1] as (typeof SERVICES)[number];
  const section = given ?? service.name;
  if (state.doc.hasSection(section)) state.say(`Overwriting section '${section}'`);
  state.doc.replaceSection(section, []);
  state.sections.push(section);
  state.set(section, 'clientName', state.defaultClientName(section));
  state.set(section, 'localPath', localPath);
  await askServiceRelay(state, section, service, localPath);
  state.set(section, 'mode', 'shared');
  state.set(section, 'refresh', '10');
  state.set(section, 'diskQuota', '2GB');
  await askEncryption(state, section, true);
  finishNewSection(state, section, state.get(section, 'protocol') ?? '', false);
}

const ADDRESS_HELP = [
  'protocol://servername[:port][/path], where protocol is one of ftp, ftps, webdav (= https), http, https, sftp or s3;',
  'or, for an rclone remote: rclone://remote/path (dropbox, onedrive, b2, googlecloud, swift... also name remotes), or remote:path;',
  'without protocol://, the protocol is asked next.',
].join('\n');

/** Asks the relay address of an advanced section (configuration.md C12) and returns the settings it means. */
async function askRelay(state: WizardState, section: string, localPath: string, mounted: boolean, current?: { address: string; protocol: string }): Promise<RelayAnswer | undefined> {
  const { prompter } = state;
  const check = (answer: RelayAnswer | string): string | undefined => {
    if (typeof answer === 'string') return answer === 'no protocol' ? undefined : answer;
    const scratch = state.scratch();
    if (!scratch.hasSection(section)) scratch.addSection(section, []);
    scratch.set(section, keysOf('localPath'), localPath);
    writeRelay(scratch, section, answer, undefined);
    return state.problemOf(section, scratch);
  };
  const text = mounted ? 'Path of the locally accessible relay repository' : 'Address of the relay repository';
  const answer = await askText(prompter, {
    text,
    required: true,
    ...(current === undefined ? {} : { default: current.address }),
    help: mounted ? 'The absolute path of a folder on this machine (a local disk, or a mounted network share).' : ADDRESS_HELP,
    check: (a) => (a === current?.address ? undefined : check(mounted ? readAddress(state.absolute(a), 'file') : readAddress(a))),
  });
  if (answer === current?.address) return undefined;
  if (mounted) return readAddress(state.absolute(answer), 'file') as RelayAnswer;
  const read = readAddress(answer);
  if (typeof read !== 'string') return read;
  let relay: RelayAnswer | undefined;
  await askText(prompter, {
    text: 'Protocol',
    required: true,
    ...(current === undefined ? {} : { default: current.protocol }),
    check: (p) => {
      const problem = protocolProblem(p.toLowerCase());
      if (problem !== undefined) return problem;
      const candidate = readAddress(answer, p.toLowerCase());
      const why = check(candidate);
      if (why === undefined) relay = candidate as RelayAnswer;
      return why;
    },
  });
  return relay;
}

/** Writes a relay answer, keeping the port and folder already set when the answer has none (configuration.md C12). */
function writeRelay(doc: ConfigDocument, section: string, relay: RelayAnswer, say: ((text: string) => void) | undefined): void {
  const keys = { protocol: keysOf('protocol'), address: keysOf('address'), port: keysOf('port'), directory: keysOf('directory') };
  const change = (what: string, key: readonly string[], value: string | undefined): void => {
    const old = doc.get(section, key)?.value;
    if (value === undefined || value === old) return;
    if (old !== undefined) say?.(`${what} '${old}' modified to: '${value}'`);
    doc.set(section, key, value);
  };
  change('Protocol', keys.protocol, relay.protocol);
  if (relay.host === undefined) doc.remove(section, keys.address);
  else change('Address', keys.address, relay.host);
  change('Port', keys.port, relay.port);
  change('Relay path', keys.directory, relay.directory);
}

/** Advanced mode, new section, then the common questions (configuration.md C12); `given` is a name typed before. */
async function newSection(state: WizardState, given: string | undefined): Promise<void> {
  const { prompter } = state;
  const localPath = await askLocalPath(state, undefined);
  const mounted = await askYesNo(prompter, 'Is the relay repository locally mounted in the file system?', false);
  // why: the answer is checked in a scratch copy of the file, under a name no section can have.
  const relay = (await askRelay(state, '[new]', localPath, mounted)) as RelayAnswer;
  let section = given;
  if (section === undefined) {
    state.say('Choose a name for this configuration section. Prefer ascii names.');
    section = await askText(prompter, {
      text: 'Section name',
      required: true,
      check: (a) => sectionNameProblem(a) ?? (state.doc.hasSection(a) ? `section '${a}' already exists` : undefined),
    });
  }
  state.doc.replaceSection(section, []);
  state.sections.push(section);
  state.set(section, 'localPath', localPath);
  writeRelay(state.doc, section, relay, undefined);
  if (relay.protocol === 'file' && relay.directory !== undefined) state.planFolder(relay.directory);
  if (relay.protocol === 'sftp' || relay.protocol === 's3') await askRcloneOrNative(state, section, relay);
  const mode = await commonQuestions(state, section);
  finishNewSection(state, section, relay.protocol, mode === 'download');
}

/** For sftp and s3 with a one-word address: is it an rclone remote or a short host name? */
async function askRcloneOrNative(state: WizardState, section: string, relay: RelayAnswer): Promise<void> {
  const host = relay.host ?? '';
  if (host === '' || /[.:/@]/.test(host) || host.toLowerCase() === 'localhost') return;
  const rclone = await askYesNo(state.prompter, `Is '${host}' the name of an rclone remote (rather than a server)?`, true);
  state.set(section, 'rclone remote', rclone ? 'yes' : 'no');
}

/** The common questions (configuration.md C12), then the protocol helper; returns the mode answered. */
async function commonQuestions(state: WizardState, section: string): Promise<string> {
  const protocol = state.get(section, 'protocol') ?? '';
  const viaRclone = usesRclone(state, section);
  await askClientName(state, section);
  await askLogin(state, section, protocol, viaRclone);
  await askEncryption(state, section);
  const mode = await askMode(state, section);
  await askPullerCount(state, section, mode);
  await askRefresh(state, section);
  if (viaRclone) await rcloneHelper(state, section, state.get(section, 'address') ?? section);
  return mode;
}

/** Advanced mode, existing section (configuration.md C12): every current value is the default. */
async function editSection(state: WizardState, section: string): Promise<void> {
  const protocol = state.get(section, 'protocol') ?? /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(state.get(section, 'address') ?? '')?.[1]?.toLowerCase();
  if (protocol === undefined || protocolProblem(protocol) !== undefined) {
    state.say(`Section '${section}' has no usable protocol; it is rebuilt from the start.`);
    await newSection(state, section);
    return;
  }
  state.sections.push(section);
  const problem = state.problemOf(section);
  if (problem !== undefined) state.say(`Section '${section}' has a problem the questions may not fix: ${problem}`);
  const localPath = await askLocalPath(state, section);
  state.set(section, 'localPath', localPath);
  const mounted = protocol === 'file';
  const address = mounted
    ? state.get(section, 'directory') ?? state.get(section, 'address') ?? ''
    : displayAddress(protocol, state.get(section, 'address'), state.get(section, 'port'), state.get(section, 'directory'));
  const relay = await askRelay(state, section, localPath, mounted, { address, protocol });
  if (relay !== undefined) {
    writeRelay(state.doc, section, relay, (text) => state.say(text));
    if (relay.protocol === 'file' && relay.directory !== undefined) state.planFolder(relay.directory);
    if (relay.protocol === 'sftp' || relay.protocol === 's3') await askRcloneOrNative(state, section, relay);
  }
  await commonQuestions(state, section);
}
