/**
 * What the configuration wizard works on while it asks its questions: the configuration being
 * edited, the files it will write at the end (the plan), and the facts it may look up (WizardEnv).
 * Nothing here writes to disk: apply.ts does, once every question has been answered.
 */
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigDocument } from '../../config/edit.js';
import { checkSections } from '../../config/load.js';
import type { FileProbe, PathKind } from '../../config/resolve.js';
import { OPTIONS } from '../../config/schema.js';
import { expandHome } from '../../config/values.js';
import type { CipherAlgorithm } from '../../crypto/cipher.js';
import type { Prompter } from './ask.js';

/** The facts the wizard looks up; nodeWizardEnv (apply.ts) gives the real ones, tests fake them. */
export interface WizardEnv {
  /** Absolute path of the configuration file being edited or created. */
  readonly configFile: string;
  readonly cwd: string;
  readonly home: string;
  readonly hostname: string;
  /** Read-only access to existing files (credential files, key files). */
  readonly fs: FileProbe;
  /** Full path of an executable found on PATH, or undefined. */
  findExecutable(name: string): string | undefined;
  /** Remote names of the user's rclone configuration (empty when rclone cannot list them). */
  rcloneRemotes(binary: string): Promise<string[]>;
  /** Runs `rclone config` on the terminal; absent when there is no terminal to run it on. */
  runRcloneConfig?: (binary: string) => Promise<void>;
}

/** A secret file to create (mode 0600, never overwriting). */
export interface PlannedSecretFile {
  readonly path: string;
  readonly content: string;
}

/** Everything the wizard will write once its questions are answered. */
export interface WizardPlan {
  readonly configFile: string;
  /** The new text of the configuration file. */
  readonly text: string;
  /** Client sections added or edited, in the order they were asked. */
  readonly sections: string[];
  /** Folders to create (local repositories, local relay folders). */
  readonly folders: string[];
  /** Credential files (`user:password`, no newline). */
  readonly secretFiles: PlannedSecretFile[];
  /** Key files to generate through the genkey code (local/key-file.ts). */
  readonly keyFiles: Array<{ readonly path: string; readonly algorithm: CipherAlgorithm }>;
  /** Key files copied into the configuration folder. */
  readonly keyCopies: Array<{ readonly from: string; readonly to: string }>;
}

// why: planned key files do not exist yet; validation reads them as a well-formed key.
const PLACEHOLDER_KEY = Buffer.from(`${'A'.repeat(43)}=`);

/** The configuration being edited plus the files planned so far. */
export class WizardState {
  readonly doc: ConfigDocument;
  readonly sections: string[] = [];
  readonly folders: string[] = [];
  readonly secretFiles: PlannedSecretFile[] = [];
  readonly keyFiles: Array<{ path: string; algorithm: CipherAlgorithm }> = [];
  readonly keyCopies: Array<{ from: string; to: string }> = [];
  readonly configDir: string;

  constructor(
    readonly prompter: Prompter,
    readonly env: WizardEnv,
    text: string,
  ) {
    this.doc = ConfigDocument.parse(text);
    this.configDir = dirname(env.configFile);
  }

  say(text: string): void {
    this.prompter.say(text);
  }

  /** The value of a setting written in the section (under any alias), if any. */
  get(section: string, id: string): string | undefined {
    return this.doc.get(section, keysOf(id))?.value;
  }

  /** Sets a setting (an option id of schema.ts, or a backend key such as `rclone binary`). */
  set(section: string, id: string, value: string): void {
    this.doc.set(section, keysOf(id), value);
  }

  /** File system view including the files and folders planned so far. */
  readonly fs: FileProbe = {
    kind: (path: string): PathKind => {
      if (this.secretFiles.some((f) => f.path === path) || this.keyFiles.some((f) => f.path === path) || this.keyCopies.some((f) => f.to === path)) return 'file';
      if (this.folders.includes(path)) return 'dir';
      return this.env.fs.kind(path);
    },
    read: (path: string): Buffer => {
      const secret = this.secretFiles.find((f) => f.path === path);
      if (secret !== undefined) return Buffer.from(secret.content);
      if (this.keyFiles.some((f) => f.path === path)) return PLACEHOLDER_KEY;
      const copy = this.keyCopies.find((f) => f.to === path);
      return this.env.fs.read(copy === undefined ? path : copy.from);
    },
  };

  /** An absolute path from an answer: `~` expanded, relative to the current folder. */
  absolute(answer: string): string {
    return resolve(this.env.cwd, expandHome(answer, this.env.home));
  }

  /**
   * Where a file answer points (configuration.md C12): absolute and `~` paths as they are; a relative name in the
   * current folder if a file of that name is there, else in the configuration folder.
   */
  fileFromAnswer(answer: string): string {
    const expanded = expandHome(answer, this.env.home);
    if (isAbsolute(expanded)) return resolve(expanded);
    const here = resolve(this.env.cwd, expanded);
    return this.fs.kind(here) === 'file' ? here : resolve(this.configDir, expanded);
  }

  /** A new credential file name: `<section>.credential`, else `<section>-0.credential`, `-1`... */
  credentialPath(section: string): string {
    const base = section.replace(/[^A-Za-z0-9._-]/g, '_');
    for (let i = -1; ; i++) {
      const path = join(this.configDir, i < 0 ? `${base}.credential` : `${base}-${i}.credential`);
      if (this.fs.kind(path) === 'missing') return path;
    }
  }

  /** Plans a folder to create (when it does not exist yet). */
  planFolder(path: string): void {
    if (this.fs.kind(path) === 'missing' && !this.folders.includes(path)) {
      this.say(`Making directory '${path}'`);
      this.folders.push(path);
    }
  }

  /** Plans a credential file and returns its path. */
  planCredential(section: string, user: string, password: string): string {
    const path = this.credentialPath(section);
    this.secretFiles.push({ path, content: `${user}:${password}` });
    return path;
  }

  /** The default client name (configuration.md C7): the host name, or the section name on `localhost`. */
  defaultClientName(section: string): string {
    return this.env.hostname !== '' && this.env.hostname !== 'localhost' ? this.env.hostname : section;
  }

  /**
   * Why the section, as written so far, would not load (the first problem the configuration reader
   * reports for it, without the file and line prefix), or undefined when it loads.
   */
  problemOf(section: string, doc: ConfigDocument = this.doc): string | undefined {
    try {
      checkSections(doc.toString(), this.env.configFile, [section], { home: this.env.home, cwd: this.env.cwd, hostname: this.env.hostname, fs: this.fs });
      return undefined;
    } catch (error) {
      const first = (error as Error).message.split('\n')[0] ?? '';
      return first.replace(`${this.env.configFile}: `, '').replace(/^.*?:\d+: /, '').replace(`[${section}] `, '');
    }
  }

  /** The plan of everything asked so far. */
  plan(): WizardPlan {
    return {
      configFile: this.env.configFile,
      text: this.doc.toString(),
      sections: [...this.sections],
      folders: [...this.folders],
      secretFiles: [...this.secretFiles],
      keyFiles: [...this.keyFiles],
      keyCopies: [...this.keyCopies],
    };
  }

  /** A copy of the configuration to try settings on before keeping them. */
  scratch(): ConfigDocument {
    return ConfigDocument.parse(this.doc.toString());
  }

  /** Whether `path` is inside the configuration folder (directly). */
  inConfigDir(path: string): boolean {
    return dirname(path) === this.configDir;
  }

  /** The configuration-folder twin of a file: same name in CFGDIR. */
  configDirTwin(path: string): string {
    return join(this.configDir, basename(path));
  }
}

/** The keys of an option id (aliases in priority order), or the key itself for backend options (`rclone binary`). */
export function keysOf(id: string): readonly string[] {
  return OPTIONS.find((o) => o.id === id)?.keys ?? [id];
}
