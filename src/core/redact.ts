/**
 * Scrubbing of secrets (passwords, passphrases) from any text that leaves the process: log lines,
 * terminal output, error messages. Pure string work; no I/O.
 */

/** What replaces a secret in scrubbed text. */
export const REDACTED = '***';

// why: `scheme://user:password@host` may appear in addresses and third-party error messages even
// when the password was never registered (for example typed into a URL by the user).
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]+@/gi;

/** Turns a secret (text or raw key bytes) into the text forms it may take in a message. */
function textForms(secret: string | Uint8Array): string[] {
  if (typeof secret === 'string') return [secret, secret.trim()].filter((s) => s.length > 0);
  const buffer = Buffer.from(secret);
  const utf8 = buffer.toString('utf8');
  const forms = [utf8, utf8.trim(), buffer.toString('hex'), buffer.toString('base64')];
  return forms.filter((s) => s.length > 0 && !s.includes('\uFFFD'));
}

/** Returns `text` with every occurrence of every secret replaced by `***`, and URL passwords masked. */
export function redact(text: string, secrets: Iterable<string | Uint8Array>): string {
  const forms = new Set<string>();
  for (const secret of secrets) for (const form of textForms(secret)) forms.add(form);
  // why: longest first, so that a secret containing another one is replaced as a whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  let out = text;
  for (const form of ordered) out = out.split(form).join(REDACTED);
  return out.replace(URL_USERINFO, `$1:${REDACTED}@`);
}

/** A set of known secrets that scrubs text; the config loader registers every password and passphrase. */
export class SecretRegistry {
  private readonly secrets = new Set<string>();

  /** Registers a secret (ignored when empty). */
  add(secret: string | Uint8Array | undefined): void {
    if (secret === undefined) return;
    for (const form of textForms(secret)) this.secrets.add(form);
  }

  /** Number of registered text forms. */
  get size(): number {
    return this.secrets.size;
  }

  /** Returns `text` scrubbed of every registered secret. */
  redact(text: string): string {
    return redact(text, this.secrets);
  }

  /** Forgets every registered secret (tests). */
  clear(): void {
    this.secrets.clear();
  }
}

/** The process-wide registry used by default by the logger sinks and the CLI output. */
export const globalSecrets = new SecretRegistry();
