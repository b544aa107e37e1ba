/**
 * `--token-file`: a token that outlives one start. A missing file is made (0600, a fresh token,
 * never through a symlink); an existing one must be a regular file that only its owner can read,
 * holding at least 16 characters.
 */
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { describeErrno, errnoCode, UsageError } from '../errors.js';
import { newToken } from './auth.js';

export function readToken(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return makeToken(file);
    throw new UsageError(`serve: --token-file ${file}: ${errnoCode(e) === 'ELOOP' ? 'it is a symbolic link; refusing to follow it' : describeErrno(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`serve: --token-file ${file} is not a regular file`);
    if (st.mode & 0o077) throw new UsageError(`serve: --token-file ${file} can be read by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it, or remove it and a fresh token is made`);
    const buf = Buffer.alloc(1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const token = buf.subarray(0, n).toString('utf8').trim();
    if (token.length < 16 || /\s/.test(token)) throw new UsageError(`serve: --token-file ${file} holds no token (one line of at least 16 characters without spaces)`);
    return token;
  } finally {
    closeSync(fd);
  }
}

function makeToken(file: string): string {
  const token = newToken();
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new UsageError(`serve: --token-file ${file}: cannot make it: ${describeErrno(e)}`);
  }
  try {
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
  return token;
}
