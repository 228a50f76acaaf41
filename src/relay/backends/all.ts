import type { BackendDescriptor } from './descriptor.js';
import { fileDescriptor } from './file/file-descriptor.js';
import { ftpDescriptor } from './ftp/ftp-descriptor.js';
import { memoryDescriptor } from './memory/memory-descriptor.js';
import { rcloneDescriptor } from './rclone/rclone-descriptor.js';
import { s3Descriptor } from './s3/s3-descriptor.js';
import { sftpDescriptor } from './sftp/sftp-descriptor.js';
import { webdavDescriptor } from './webdav/webdav-descriptor.js';

// why: one import plus one line here is all a new backend needs; it replaces the registry's planned
// entry of the same name (an available descriptor always wins over a planned one).
/** Every backend this build can open, in the order help texts list them. */
export const BUILT_BACKENDS: readonly BackendDescriptor[] = [
  fileDescriptor,
  memoryDescriptor,
  ftpDescriptor,
  webdavDescriptor,
  sftpDescriptor,
  s3Descriptor,
  rcloneDescriptor,
];
