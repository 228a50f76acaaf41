/**
 * The questions asked about every client in advanced mode, new or edited (configuration.md C12): client name,
 * credentials, encryption, synchronization mode, puller count and refresh interval. Existing
 * values are the defaults; secrets are never shown (configuration.md U-16, U-22).
 */
import { readCredentialFile } from '../../config/resolve.js';
import { asBoolean } from '../../config/values.js';
import type { SyncMode } from '../../config/schema.js';
import { FernetKey } from '../../crypto/fernet.js';
import type { CipherAlgorithm } from '../../crypto/cipher.js';
import { askText, askYesNo, KEEP_SECRET, wholeNumber } from './ask.js';
import { askSshKeyAndHost, isNative, sectionAddress } from './relay.js';
import { keysOf, type WizardState } from './state.js';

const PASSWORD_KEYS = keysOf('password');
const USER_KEYS = keysOf('user');

/** `Client name: [<default>]` (configuration.md C12); always written, so the identity never depends on the host name. */
export async function askClientName(state: WizardState, section: string): Promise<void> {
  const name = await askText(state.prompter, {
    text: 'Client name',
    default: state.get(section, 'clientName') ?? state.defaultClientName(section),
    help: 'The name of this client on the relay. Every client of one relay repository needs its own name; by default it is the host name.',
  });
  state.set(section, 'clientName', name);
}

/** Labels of the login questions of a protocol (S3 calls them access keys). */
function loginLabels(protocol: string): { user: string; password: string } {
  return protocol === 's3' ? { user: 'Access key id', password: 'Secret access key' } : { user: 'Authentication username', password: 'Password' };
}

/**
 * Credentials (configuration.md C12): a user name and a hidden password, stored together in a new
 * credential file (mode 0600); or, with no user name, an existing secret file. An empty password
 * keeps the current one, or leaves it to be asked when escale connects.
 */
export async function askCredentials(state: WizardState, section: string, protocol: string): Promise<void> {
  const { prompter } = state;
  const labels = loginLabels(protocol);
  const existingSecret = state.doc.get(section, PASSWORD_KEYS);
  const existingFile = existingSecret === undefined ? undefined : state.fileFromAnswer(existingSecret.value);
  const secretIsFile = existingFile !== undefined && state.fs.kind(existingFile) === 'file';
  state.say('If the credentials are available in a file, leave the following field empty.');
  const user = await askText(prompter, {
    text: labels.user,
    default: state.get(section, 'user') ?? '',
    check: (a) => (a.includes(':') ? `'${labels.user}' cannot contain ':'` : undefined),
  });
  if (user !== '') {
    const password = await askText(prompter, {
      text: labels.password,
      secret: true,
      ...(existingSecret === undefined ? {} : { default: '' }),
      check: (a) => {
        if (a === '' || !looksLikeFile(a)) return undefined;
        const path = state.fileFromAnswer(a);
        if (state.fs.kind(path) !== 'file') return undefined;
        const read = readCredentialFile(state.fs.read(path).toString('utf8'), user);
        return read.ok ? undefined : `wrong password file: ${read.problem} in '${path}'`;
      },
    });
    if (password === '') {
      // why: an empty answer keeps the password already configured, or leaves it to be asked at run time.
      state.set(section, 'user', user);
      return;
    }
    const fromFile = looksLikeFile(password) && state.fs.kind(state.fileFromAnswer(password)) === 'file';
    const secret = fromFile ? readCredentialFile(state.fs.read(state.fileFromAnswer(password)).toString('utf8'), user) : undefined;
    const actual = secret?.ok ? secret.value.password : password;
    state.doc.remove(section, [...PASSWORD_KEYS, ...USER_KEYS]);
    state.doc.set(section, ['secret file'], state.planCredential(section, user, actual));
    return;
  }
  const file = await askText(prompter, {
    text: 'Secret file',
    default: secretIsFile ? existingFile : '',
    help: "A file holding 'user:password' on its first line (or just the password when a user name is configured), readable by you only (chmod 600).",
    check: (a) => {
      if (a === '') return undefined;
      const path = state.fileFromAnswer(a);
      if (state.fs.kind(path) !== 'file') return `'${path}' does not exist; create it first, or leave the field empty to be asked for the password when escale connects`;
      const read = readCredentialFile(state.fs.read(path).toString('utf8'), state.get(section, 'user'));
      return read.ok ? undefined : `${read.problem} in '${path}'`;
    },
  });
  if (file !== '') {
    state.doc.remove(section, PASSWORD_KEYS);
    state.doc.set(section, ['secret file'], state.fileFromAnswer(file));
  }
}

function looksLikeFile(answer: string): boolean {
  return answer.includes('/') || answer.startsWith('~');
}

/** Reads an encryption answer: an algorithm, or null for none; undefined when not understood. */
export function readEncryption(answer: string): CipherAlgorithm | null | undefined {
  const lower = answer.trim().toLowerCase();
  const b = asBoolean(lower);
  if (b !== undefined) return b ? 'fernet' : null;
  return (['fernet', 'blowfish', 'blowfish.cryptography', 'blowfish.blowfish'] as const).find((a) => a === lower);
}

/**
 * Encryption (configuration.md C12): `Encryption: [on]`, then the key file, generated when missing (never
 * printed: configuration.md U-16). `simplified` asks the yes/no form of the simplified mode instead.
 */
export async function askEncryption(state: WizardState, section: string, simplified = false): Promise<void> {
  let algorithm: CipherAlgorithm | null;
  if (simplified) {
    algorithm = (await askYesNo(state.prompter, 'Encrypt the files on the relay?', true)) ? 'fernet' : null;
  } else {
    const existing = state.get(section, 'encryption');
    const answer = await askText(state.prompter, {
      text: 'Encryption',
      default: existing === undefined ? 'on' : existing,
      help: "on (= fernet), off, fernet or blowfish. Every client of a relay must use the same algorithm and the same key file.",
      check: (a) => (readEncryption(a) === undefined ? `expected on, off, fernet or blowfish, got '${a}'` : undefined),
    });
    algorithm = readEncryption(answer) ?? null;
  }
  if (algorithm === null) {
    // why: the passphrase stays: what was encrypted with it may still have to be read.
    state.set(section, 'encryption', 'off');
    return;
  }
  state.set(section, 'encryption', algorithm);
  state.set(section, 'passphrase', await askKeyFile(state, section, algorithm));
}

/** Asks the key file until it exists, will be generated, or is copied into the configuration folder; returns its path. */
async function askKeyFile(state: WizardState, section: string, algorithm: CipherAlgorithm): Promise<string> {
  const existing = state.get(section, 'passphrase');
  // why: a key written in the configuration itself is a secret: never shown (configuration.md U-22), kept on an empty answer.
  const literal = existing !== undefined && state.fs.kind(state.fileFromAnswer(existing)) !== 'file';
  if (literal) state.say('The key is written in the configuration file itself: leave the next field empty to keep it, or name a key file.');
  for (;;) {
    const answer = await askText(state.prompter, {
      text: 'Passphrase filename',
      default: existing ?? `${section}.passphrase`,
      ...(literal ? { defaultLabel: KEEP_SECRET } : {}),
      check: (a) => {
        if (literal && a === existing) return undefined;
        const path = state.fileFromAnswer(a);
        const kind = state.fs.kind(path);
        if (kind !== 'missing' && kind !== 'file') return `'${path}' is not a regular file`;
        if (kind === 'file' && algorithm === 'fernet') {
          try {
            FernetKey.parse(state.fs.read(path));
          } catch {
            return `'${path}' does not hold a fernet key (32 bytes in URL-safe base64, 44 characters)`;
          }
        }
        return undefined;
      },
    });
    if (literal && answer === existing) return answer;
    const path = state.fileFromAnswer(answer);
    if (state.fs.kind(path) === 'file') {
      const twin = state.configDirTwin(path);
      if (!state.inConfigDir(path) && state.fs.kind(twin) === 'missing') {
        state.say('Copying file into configuration directory.');
        state.keyCopies.push({ from: path, to: twin });
        return twin;
      }
      return path;
    }
    state.say(`'${path}' file does not exist yet`);
    if (await askYesNo(state.prompter, 'Generate a new key?', true)) {
      state.keyFiles.push({ path, algorithm });
      state.say(`A new key will be written to '${path}' (mode 0600). Copy this file to the other clients of the relay over a safe channel, never by e-mail.`);
      return path;
    }
    state.say(`Copy the key of the other clients to '${path}' first, or choose another file.`);
  }
}

/** Reads a mode answer as the configuration reader does (configuration.md C8); undefined when not a mode. */
export function readMode(answer: string): SyncMode | undefined {
  const m = answer.trim().toLowerCase();
  if (m === 'upload' || m === 'download') return m;
  if (m.startsWith('shar')) return 'shared';
  return m === 'conservative' || m === 'protective' ? 'conservative' : undefined;
}

const MODE_HELP = [
  "upload: this client only sends its files; its local files are never changed.",
  "download: this client only receives files; it sends nothing.",
  "shared: two-way synchronization (the default).",
  "conservative: two-way, but a file modified locally is never overwritten.",
].join('\n');

/** Synchronization mode (configuration.md C12), validated (U-16); legacy push/pull-only keys become `mode`. */
export async function askMode(state: WizardState, section: string): Promise<SyncMode> {
  const push = state.doc.get(section, ['push only', 'read only']);
  const pull = state.doc.get(section, ['pull only', 'write only']);
  let suggestion = readMode(state.get(section, 'mode') ?? '') ?? 'shared';
  const pushOn = push !== undefined && asBoolean(push.value) === true;
  const pullOn = pull !== undefined && asBoolean(pull.value) === true;
  if (pushOn && pullOn) state.say("both 'push only' and 'pull only' are set; discarding both settings");
  else if (pushOn) suggestion = 'upload';
  else if (pullOn) suggestion = 'download';
  state.doc.remove(section, ['push only', 'read only', 'pull only', 'write only']);
  state.say("Synchronization mode can be 'upload', 'download', 'shared' or 'conservative'");
  const answer = await askText(state.prompter, {
    text: 'Which mode for this client?',
    default: suggestion,
    help: MODE_HELP,
    check: (a) => (readMode(a) === undefined ? `'${a}' is not a mode; expected upload, download, shared or conservative` : undefined),
  });
  const mode = readMode(answer) as SyncMode;
  state.set(section, 'mode', mode);
  return mode;
}

const PULLER_HELP =
  'A file stays on the relay until this many clients have downloaded it. With shared or conservative clients only, it is the number of clients minus one; clients in upload mode never download.';

/** Puller count (configuration.md C12), asked from the mode just answered; the direct answer is kept (U-16). */
export async function askPullerCount(state: WizardState, section: string, mode: SyncMode): Promise<void> {
  if (mode === 'upload') return;
  const { prompter } = state;
  state.say('Specify the number of pullers for relay repository:');
  state.say(`\t${sectionAddress(state, section)}`);
  const how = await askText(prompter, {
    text: 'Do you want to directly set the puller count [1] or do you prefer to be guided with a series of questions [2] so that the assistant will choose a value for you?',
    default: '2',
    check: (a) => (a === '1' || a === '2' ? undefined : "answer 1 or 2"),
  });
  const current = state.doc.get(section, ['puller count', 'pullers']);
  let pullers: number | undefined;
  if (how === '1') {
    const answer = await askText(prompter, { text: 'Number of pullers', default: current?.value ?? '', help: PULLER_HELP, check: wholeNumber(1) });
    if (answer !== '') pullers = Number(answer);
  } else {
    const total = await askText(prompter, {
      text: 'Total number of clients',
      default: state.get(section, 'client count') ?? '',
      help: `${PULLER_HELP} Count every client of this relay repository, this one included.`,
      check: wholeNumber(2),
    });
    if (total === '') return;
    const clients = Number(total);
    state.set(section, 'client count', total);
    const homogeneous = mode === 'download' ? false : await askYesNo(prompter, "Will all the clients run in either 'shared' or 'conservative' mode?", true);
    if (mode !== 'download') state.set(section, 'homogeneous clients', homogeneous ? 'yes' : 'no');
    if (homogeneous) pullers = clients - 1;
    else {
      const uploaders = await askText(prompter, { text: "Number of clients in 'upload' mode", default: mode === 'download' ? '1' : '0', check: wholeNumber(0, clients - 1) });
      state.set(section, 'upload count', uploaders);
      pullers = clients - Number(uploaders);
    }
  }
  if (pullers === undefined) return;
  if (current !== undefined && current.value !== String(pullers)) state.say(`${current.key} was: '${current.value}'; is now: '${pullers}'`);
  state.doc.set(section, ['puller count', 'pullers'], String(pullers));
}

/** Refresh interval (configuration.md C12); a typed `1` is written `1.0`, since the reader takes a bare 1 for "yes" (30 s). */
export async function askRefresh(state: WizardState, section: string): Promise<void> {
  const existing = state.get(section, 'refresh') ?? state.doc.getGlobal(keysOf('refresh'))?.value;
  const answer = await askText(state.prompter, {
    text: 'Refresh interval (in seconds)',
    default: existing ?? '10',
    check: (a) => {
      if (asBoolean(a) === true) return undefined;
      return /^\d+(\.\d+)?$/.test(a) && Number(a) > 0 ? undefined : `expected a number of seconds greater than 0, got '${a}'`;
    },
  });
  if (answer !== existing) state.set(section, 'refresh', answer === '1' ? '1.0' : answer);
}

/** Credentials for the protocols that have them: not `file`, nor relays reached through rclone (configuration.md C12). */
export async function askLogin(state: WizardState, section: string, protocol: string, viaRclone: boolean): Promise<void> {
  if (protocol === 'file' || viaRclone) return;
  await askCredentials(state, section, protocol);
  if (protocol === 'sftp' && isNative(state, section)) {
    const hasPassword = state.doc.get(section, PASSWORD_KEYS) !== undefined;
    await askSshKeyAndHost(state, section, state.get(section, 'address') ?? '', !hasPassword);
  }
}
