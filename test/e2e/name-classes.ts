// The classes of file names met in the field (issue 12), drawn by a seeded generator, and the
// decision table of RELIABILITY.md ("Names") written out: which names escale refuses, per protocol.
// Shared by the generated names test (field-names.test.ts) and the hostile torture variants.
import { decodeName } from '../../src/core/relpath.js';
import { between, pick, type Random } from '../reliability/random.js';

/** The escale protocols a name is judged for. */
export type NameProtocol = 'placeholder' | 'index';

/** Every class of names, ordinary ones included. */
export const NAME_CLASSES = ['ordinary', 'colon', 'drive', 'nfd', 'control', 'backslash', 'not-utf8', 'long', 'spaces', 'deep'] as const;

/** One class of names. */
export type NameClass = (typeof NAME_CLASSES)[number];

/** Who holds a name first: a 0.7 client pushing onto the relay (its formats limit the names), or a folder of ours. */
export type NameHolder = 'escale07' | 'local';

const WORDS = ['café', 'naïve', 'Ångström', 'résumé', 'Zürich', 'mañana', 'São Paulo', 'Łódź', 'Ελληνικά', 'Crème brûlée'];

/** A name of exactly `bytes` UTF-8 bytes starting with `tag`, padded with 2-byte and ASCII letters. */
function sized(tag: string, bytes: number, suffix = '.txt'): string {
  let name = `${tag}-`;
  while (Buffer.byteLength(name) + Buffer.byteLength(suffix) + 2 <= bytes - 10) name += 'é';
  while (Buffer.byteLength(name) + Buffer.byteLength(suffix) < bytes) name += 'x';
  return name + suffix;
}

/**
 * A name of class `cls`, unique by its `tag`, as bytes: what the 0.7 formats (`escale07`, for
 * `protocol`) or a local folder can hold.
 */
export function nameOf(random: Random, cls: NameClass, holder: NameHolder, protocol: NameProtocol, tag: string): Buffer {
  const index07 = holder === 'escale07' && protocol === 'index';
  switch (cls) {
    case 'ordinary':
      return Buffer.from(pick(random, [`${tag}-notes.txt`, `docs/${tag}-report.md`, `photos/2026/${tag}.jpg`]));
    case 'colon':
      return Buffer.from(pick(random, [`Q: ${tag} answers.txt`, `${tag} 10:30 meeting.txt`, `a:b:${tag}`, `dir:${tag}/x.txt`]));
    case 'drive':
      return Buffer.from(pick(random, [`C:/${tag}.txt`, `c:${tag}.txt`, `D:/deep/${tag}.txt`, `Z: ${tag}`]));
    case 'nfd': {
      const word = pick(random, WORDS);
      return Buffer.from(pick(random, [`${tag}-${word}.txt`, `${word}/${tag}.txt`]).normalize('NFD'));
    }
    case 'control': {
      // why: LF and CR cannot be written into a 0.7 index line at all; 0.7 puts them in placeholder relays only.
      const controls = index07 ? ['\t', '\u0001', '\u001b', '\u007f'] : ['\t', '\u0001', '\u001b', '\u007f', '\r', '\n'];
      return Buffer.from(`${tag}${pick(random, controls)}x.txt`);
    }
    case 'backslash':
      return Buffer.from(pick(random, [`${tag}\\x.txt`, `${tag}..\\..\\up.txt`, `C:\\${tag}`]));
    case 'not-utf8':
      return Buffer.concat([Buffer.from(tag), Buffer.from(pick(random, [[0xe9], [0xff, 0xfe], [0xc3, 0x28], [0x80]])), Buffer.from('.txt')]);
    case 'long': {
      // why: a 0.7 placeholder push of a longer base name fails (its `.N.placeholder` passes 255 bytes); an index entry may have any length.
      const max = holder === 'escale07' && protocol === 'placeholder' ? 242 : 255;
      const base = sized(tag, between(random, 240, index07 && random() < 0.4 ? 300 : max));
      return Buffer.from(random() < 0.5 ? base : `${tag}-folder/${sized(tag, between(random, 200, 230))}`);
    }
    case 'spaces':
      return Buffer.from(pick(random, index07 ? [` ${tag} leading.txt`, `  ${tag}  inner  x.txt`] : [` ${tag} leading.txt`, `${tag} trailing.txt `, `  ${tag}  both  `]));
    case 'deep':
      return Buffer.from(`${Array.from({ length: between(random, 12, 30) }, (_, k) => `level-${k}`).join('/')}/${tag}.txt`);
  }
}

/** Why escale refuses the name `name` (bytes) on `protocol`, or undefined when it syncs (RELIABILITY.md, "Names"). */
export function refusalOf(name: Buffer, protocol: NameProtocol): string | undefined {
  const text = decodeName(name);
  const base = text.slice(text.lastIndexOf('/') + 1);
  if (/[\udc80-\udcff]/.test(text)) return 'is not valid UTF-8';
  // eslint-disable-next-line no-control-regex -- why: control characters are the class under test
  if (/[\x00-\x1f\x7f]/.test(text)) return 'contains a control character';
  if (text.includes('\\')) return 'contains a backslash';
  if (text.split('/').some((segment) => Buffer.byteLength(segment) > 255)) return 'has a segment longer than 255 bytes';
  if (protocol === 'placeholder' && Buffer.byteLength(base) > 242) return 'placeholder name';
  if (protocol === 'index' && /\s$/.test(text)) return 'ends with whitespace';
  return undefined;
}
