import type { S3Quirks } from './s3-backend.js';

// why: in a module of its own so that the descriptor can name it without loading the AWS SDK.
/** The quirks of s3rver 3.7, the S3 emulator the tests run against (`s3 quirks = s3rver`). */
export const S3RVER_QUIRKS: S3Quirks = { clientSideFolders: true, copySourceDecodeUri: true };
