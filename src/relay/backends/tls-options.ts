import { readFileSync } from 'node:fs';
import type { ConnectionOptions, SecureVersion } from 'node:tls';
import { EscaleError } from '../../core/errors.js';

/** The TLS settings a relay section may give (names as in the configuration). */
export interface TlsSettings {
  /** Host name the certificate must match (left out for IP addresses, which Node checks by IP). */
  readonly host?: string;
  /** `false` turns certificate verification off; anything else verifies against the CA store. */
  readonly verifySsl?: boolean;
  /** `ssl version`: SSLv23/TLS (any), TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3. */
  readonly sslVersion?: string;
  /** Client certificate file (PEM); may also hold the key. */
  readonly certificate?: string;
  /** Client key file (PEM). */
  readonly keyfile?: string;
  /** Extra CA certificates file (PEM) trusted besides the system store. */
  readonly caFile?: string;
}

const VERSIONS: Record<string, SecureVersion | undefined> = {
  tls: undefined,
  sslv23: undefined,
  tlsv1: 'TLSv1',
  'tlsv1.0': 'TLSv1',
  'tlsv1.1': 'TLSv1.1',
  'tlsv1.2': 'TLSv1.2',
  'tlsv1.3': 'TLSv1.3',
};

/**
 * Builds Node TLS connection options from relay settings: verification on unless `verifySsl` is
 * false, `sslVersion` pinned through minVersion/maxVersion, client certificate and key, extra CA.
 * Throws Config for an unknown or unavailable version and Config when a file cannot be read.
 */
export function tlsOptionsFrom(settings: TlsSettings): ConnectionOptions {
  const options: ConnectionOptions = { rejectUnauthorized: settings.verifySsl !== false };
  if (settings.host !== undefined && !/^[\d.]+$|:/.test(settings.host)) options.servername = settings.host;
  if (settings.sslVersion !== undefined && settings.sslVersion !== '') {
    const key = settings.sslVersion.trim().replace(/^\((.*)\)$/, '$1').toLowerCase();
    if (!(key in VERSIONS)) {
      throw new EscaleError('Config', `ssl version '${settings.sslVersion}' is not supported (use TLS, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)`, { key: 'ssl version' });
    }
    const version = VERSIONS[key];
    if (version !== undefined) {
      options.minVersion = version;
      options.maxVersion = version;
    }
  }
  if (settings.certificate) {
    options.cert = readPem(settings.certificate, 'certificate');
    // why: Python's ssl accepts a certificate file that also holds the key; Node needs `key` set.
    options.key = settings.keyfile ? readPem(settings.keyfile, 'keyfile') : options.cert;
  }
  if (settings.caFile) options.ca = readPem(settings.caFile, 'ca file');
  return options;
}

function readPem(file: string, key: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new EscaleError('Config', `cannot read ${key} '${file}': ${(error as Error).message}`, { key, cause: error });
  }
}

/** TLS error codes that mean the server's certificate was not trusted. */
export const CERTIFICATE_ERROR_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
