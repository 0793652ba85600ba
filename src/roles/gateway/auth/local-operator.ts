import { createHash, timingSafeEqual } from 'node:crypto';
import { randomToken } from './secrets.js';

// The local operator: whoever can read `<dataDir>/server.json` (mode 0600, written by the process that owns the data
// directory) already owns every byte of the instance, so the token in it is accepted as an instance admin. This is
// how the CLI on the same machine drives a running server through its API with no password typed.
//
// Who the requests act as: the instance's first admin (oldest enabled admin account), so what the CLI creates
// (workspaces, chats) belongs to that person and shows in their web UI. Before anyone has an account, a built-in
// user (OPERATOR_EMAIL, no usable password, admin) is created on demand; the "first sign-up becomes admin" rule
// does not count it, so the first person to sign up still becomes the admin. Its address has no top-level domain,
// which every API input (sign-up, login, invites, members, `docupod user create`) rejects: nobody can become it.
//
// The token is new at every start, lives in memory and in server.json only, and is compared in constant time.

export const LOCAL_TOKEN_PREFIX = 'dplocal_';
export const OPERATOR_EMAIL = 'operator@localhost';
/** Not a scrypt hash: verifyPassword() rejects every password against it. */
export const NO_PASSWORD = '!no-password:local-operator';

export function newLocalToken(): string {
  return LOCAL_TOKEN_PREFIX + randomToken(32);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class LocalOperatorToken {
  private readonly hash: Buffer;

  constructor(readonly token: string) {
    this.hash = digest(token);
  }

  /** Constant time in the candidate's content (both sides are hashed to the same length first). */
  matches(candidate: string): boolean {
    return candidate.startsWith(LOCAL_TOKEN_PREFIX) && timingSafeEqual(digest(candidate), this.hash);
  }
}
