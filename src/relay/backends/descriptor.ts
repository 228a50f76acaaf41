import type { Logger } from '../../core/log.js';
import type { Backend } from '../backend.js';

/**
 * Where a relay is, in backend terms. The daemon maps a configuration section to this; backends
 * never see the configuration types. `protocol` is the name the user wrote (an alias included).
 */
export interface RelayTarget {
  readonly protocol: string;
  readonly host?: string;
  readonly port?: number;
  /** The URL scheme written in the address where the protocol does not tell it (s3: http or https). */
  readonly scheme?: 'http' | 'https';
  /** Folder on the relay (`host directory`); '' when unset. */
  readonly directory: string;
  readonly user?: string;
  readonly password?: string;
  readonly verifySsl?: boolean;
  readonly sslVersion?: string;
  readonly certificate?: string;
  readonly keyfile?: string;
  /** Backend-specific options (for example `rclone binary`), by configuration key. */
  readonly options: Readonly<Record<string, string>>;
}

/** What a backend may use while opening: cancellation and a logger. */
export interface OpenContext {
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** The caller promises to write nothing on the relay (`--dry-run`, `list-pending`): opening creates nothing either. */
  readonly readOnly?: boolean;
}

/** One kind of backend, by name and aliases, and how to open it. */
export interface BackendDescriptor {
  /** Canonical protocol name. */
  readonly name: string;
  /** Other protocol names that select this backend (escale 0.7 names included). */
  readonly aliases: readonly string[];
  /** One line for help texts and the wizard. */
  readonly describe: string;
  /** Whether this build can open it. */
  readonly available: boolean;
  /**
   * Whether an address that names an rclone remote selects the rclone backend instead (escale 0.7
   * configs wrote `sftp` and `s3` relays as rclone remotes); the registry applies the rule.
   */
  readonly rcloneRemoteAddress?: boolean;
  /** Opens a backend on the target; throws an EscaleError (Config, NotFound, Unsupported, ...). */
  open(target: RelayTarget, context: OpenContext): Promise<Backend>;
}
