/** Departures of some S3-compatible servers from S3, each handled by a work-around. */
export interface S3Quirks {
  /**
   * Derive folders from a flat listing instead of asking for CommonPrefixes (`Delimiter=/`):
   * s3rver 3.7 omits a folder that holds only sub-folders. Costs a listing of the whole subtree.
   */
  readonly clientSideFolders?: boolean;
  /**
   * s3rver 3.7 decodes `x-amz-copy-source` with decodeURI, which keeps `%23` (`#`), `%3F` (`?`)
   * and the like encoded: send those characters literally (encodeURI) instead of percent-encoded.
   */
  readonly copySourceDecodeUri?: boolean;
}

// why: in a module of its own so that the descriptor can name it without loading the AWS SDK.
/** The quirks of s3rver 3.7, the S3 emulator the tests run against (`s3 quirks = s3rver`). */
export const S3RVER_QUIRKS: S3Quirks = { clientSideFolders: true, copySourceDecodeUri: true };
