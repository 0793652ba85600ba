import { createHash, randomBytes } from 'node:crypto';

/** Opaque bearer secrets (refresh tokens, invites, API keys): 32 random bytes, base64url. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Tokens are stored only as hashes; a fast hash is right here because the input already has 256 bits of entropy. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

export const API_KEY_PREFIX = 'dp_';

export function newApiKey(): { key: string; prefix: string; hash: string } {
  const key = API_KEY_PREFIX + randomToken(32);
  return { key, prefix: key.slice(0, API_KEY_PREFIX.length + 8), hash: sha256(key) };
}
