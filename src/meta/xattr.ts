/**
 * Extended attributes of paths, never following symlinks: the native addon's xattr calls
 * (src/native.ts loads it). When it is missing, each call throws ENOADDON; callers check
 * native.ts's `available()` first and go on without extended attributes (after one warning
 * per run).
 */
import { xattrCalls } from '../native.js';

export const listXattrs = (path: Buffer): Buffer[] => xattrCalls().list(path);
export const getXattr = (path: Buffer, name: string | Buffer): Buffer => xattrCalls().get(path, name);
export const setXattr = (path: Buffer, name: string | Buffer, value: Buffer, flags = 0): void => xattrCalls().set(path, name, value, flags);
export const removeXattr = (path: Buffer, name: string | Buffer): void => xattrCalls().remove(path, name);

/** lsetxattr flags */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
