import type { BigIntStats } from 'node:fs';

/**
 * What tells one version of a local file from another without reading it: any change of size,
 * mtime, ctime or inode is a change (a content change that keeps the mtime still moves the ctime,
 * and a file replaced by a rename has another inode).
 */
export interface FileIdentity {
  readonly size: number;
  /** Modification time in milliseconds, as stat gives it. */
  readonly mtimeMs: number;
  /** Status-change time in milliseconds, computed like `mtimeMs`. */
  readonly ctimeMs: number;
  /** Inode number in decimal (a string: 64-bit inode numbers do not fit a double). */
  readonly ino: string;
}

/**
 * Milliseconds of a bigint nanosecond time, computed exactly as Node computes `Stats.mtimeMs`, so
 * it compares equal with a later plain `stat` (the writer's "unchanged since scanned" check).
 */
function msOfNs(ns: bigint): number {
  return Number(ns / 1_000_000_000n) * 1000 + Number(ns % 1_000_000_000n) / 1e6;
}

/** The identity of a file from bigint stats (`stat(path, { bigint: true })`). */
export function identityOf(info: BigIntStats): FileIdentity {
  return { size: Number(info.size), mtimeMs: msOfNs(info.mtimeNs), ctimeMs: msOfNs(info.ctimeNs), ino: info.ino.toString() };
}

/** Whether two identities name the same version: equal size, mtime, ctime and inode; an unknown field is a difference. */
export function sameIdentity(a: Partial<FileIdentity>, b: Partial<FileIdentity>): boolean {
  return a.ctimeMs !== undefined && a.ino !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

/**
 * An identity taken less than this long after its ctime does not tell versions apart for sure.
 * why: file-system timestamps advance in coarse ticks, so a write in the same tick as the one before
 * it keeps size, mtime and ctime; a checksum or a base recorded for that identity could describe
 * content the file no longer has, for as long as nothing else changes it (git's "racy" entries).
 */
export const RACY_MS = 2000;
