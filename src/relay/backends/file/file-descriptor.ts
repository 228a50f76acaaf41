import { isAbsolute, join } from 'node:path';
import { EscaleError } from '../../../core/errors.js';
import type { Backend } from '../../backend.js';
import type { BackendDescriptor, OpenContext, RelayTarget } from '../descriptor.js';
import { openFileBackend } from './file-backend.js';

/** The root folder a `file` target names: host address joined with host directory (configuration.md C5). */
export function fileRoot(target: RelayTarget): string {
  const host = target.host ?? '';
  const root = host === '' ? target.directory : target.directory === '' ? host : join(host, target.directory);
  if (root === '' || !isAbsolute(root)) {
    throw new EscaleError('Config', `the relay folder '${root}' must be an absolute path`, {
      hint: 'set the host address to an absolute folder, for example /mnt/relay',
    });
  }
  return root;
}

/** Registry entry for local or mounted folders. */
export const fileDescriptor: BackendDescriptor = {
  name: 'file',
  aliases: [],
  describe: 'a local or mounted folder (NFS, SMB, a Dropbox folder, ...)',
  available: true,
  async open(target: RelayTarget, context: OpenContext): Promise<Backend> {
    const root = fileRoot(target);
    return openFileBackend({
      root,
      ...(context.logger === undefined ? {} : { logger: context.logger }),
      // why: escale 0.7 creates the relay folder with its parents (its first put does `os.makedirs`); a read-only run creates nothing.
      ...(context.readOnly === true
        ? {}
        : { create: { onCreated: (folders: readonly string[]) => context.logger?.warning(`the relay folder '${root}' did not exist; created ${folders.map((f) => `'${f}'`).join(', ')}`) } }),
    });
  },
};
