import type { Backend } from '../../backend.js';
import type { BackendDescriptor, OpenContext, RelayTarget } from '../descriptor.js';
import { openRcloneBackend } from './rclone-backend.js';
import { rcloneOptionsFrom } from './rclone-remote.js';

/** Opens the rclone backend for a target (named remote or on-the-fly `rclone type` remote). */
async function openRcloneTarget(target: RelayTarget, context: OpenContext = {}): Promise<Backend> {
  return openRcloneBackend({ ...(await rcloneOptionsFrom(target)), ...(context.logger === undefined ? {} : { logger: context.logger }) });
}

/**
 * Registry entry for `rclone` and the escale 0.7 aliases that all meant "an rclone remote named by
 * the host address" (configuration.md C5). `sftp` and `s3` have their own entries, which choose
 * between rclone and the native backend; `googledrive`/`google` stay with the drive tool (configuration.md C5).
 */
export const rcloneDescriptor: BackendDescriptor = {
  name: 'rclone',
  aliases: ['dropbox', 'googlecloud', 'onedrive', 'b2', 'hubic', 'swift', 'amazoncloud'],
  describe: "any rclone remote; host address names the remote (or 'rclone type' builds one)",
  available: true,
  open: (target, context) => openRcloneTarget(target, context),
};
