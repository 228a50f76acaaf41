// libfaketime (Debian package faketime, installed by .ci/run) for end-to-end runs of clients whose
// clocks are off: `Date.now()` (CLOCK_REALTIME) is faked through LD_PRELOAD; file mtimes are not
// (the kernel stamps them, and Node's stat uses statx, which libfaketime does not intercept), which
// is exactly a relay on a machine with the right clock. CLOCK_MONOTONIC would be faked too (as the
// real time plus the offset); FAKETIME_DONT_FAKE_MONOTONIC=1 keeps it true.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Why the clock-skew runs cannot run here. */
export const FAKETIME_MISSING = 'libfaketime.so.1 not found (Debian package faketime)';

/** The libfaketime library of this machine, or undefined. */
export function libfaketime(): string | undefined {
  for (const base of ['/usr/lib', '/usr/local/lib', '/usr/lib64']) {
    const direct = join(base, 'faketime', 'libfaketime.so.1');
    if (existsSync(direct)) return direct;
    let subdirs: string[] = [];
    try {
      subdirs = readdirSync(base);
    } catch {
      continue;
    }
    for (const sub of subdirs) {
      const candidate = join(base, sub, 'faketime', 'libfaketime.so.1');
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

/** The environment that runs a program with its clock `offset` away (libfaketime syntax: `+2h`, `-2h`, `-7200s`). */
export function faketimeEnv(lib: string, offset: string): NodeJS.ProcessEnv {
  return { LD_PRELOAD: lib, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}
