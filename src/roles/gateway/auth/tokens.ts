import { webcrypto } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { randomToken } from './secrets.js';
import type { SettingsRepo } from './repositories.js';

// Access tokens: short-lived HS256 JWTs. Only HS256 is ever accepted (no `none`, no algorithm confusion), and the
// issuer, audience and our `typ` claim must match, so no other token (or another service's JWT) passes as one.

export const ISSUER = 'docupod';
export const AUDIENCE = 'docupod';
const JWT_SECRET_SETTING = 'jwt_secret';

// Verified access tokens remembered (oldest dropped first beyond this many): one per active session is plenty.
const VERIFIED_MAX = 10_000;

export class AccessTokens {
  private key?: Promise<webcrypto.CryptoKey>;
  private readonly verified = new Map<string, { sub: string; exp: number }>();

  constructor(
    private readonly opts: { secret?: string; ttlMs: number; settings: SettingsRepo },
  ) {}

  /**
   * The configured secret, or one generated once and kept in instance_settings so every pod signs with the same key.
   * Loaded on first use; a failure is retried on the next call.
   */
  private signingKey(): Promise<webcrypto.CryptoKey> {
    this.key ??= (async () => {
      const secret = this.opts.secret ?? (await this.opts.settings.getOrInit(JWT_SECRET_SETTING, randomToken(48)));
      // Imported once as a non-extractable HMAC key: given raw bytes, jose imports them again on every sign and
      // verify, which was the largest single cost of authenticating a JWT request.
      return webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    })().catch((err: unknown) => {
      this.key = undefined;
      throw err;
    });
    return this.key;
  }

  get ttlSeconds(): number {
    return Math.floor(this.opts.ttlMs / 1000);
  }

  async sign(userId: string): Promise<string> {
    return new SignJWT({ typ: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(new Date(Date.now() + this.opts.ttlMs))
      .sign(await this.signingKey());
  }

  /** The user id of a token that verified before and has not expired since; undefined when it must be verified. */
  verifiedSubject(token: string): string | undefined {
    const hit = this.verified.get(token);
    return hit && Math.floor(Date.now() / 1000) < hit.exp ? hit.sub : undefined;
  }

  /** The user id of a valid access token, or undefined for anything else (expired, forged, wrong type, garbage). */
  async verify(token: string): Promise<string | undefined> {
    // A token that verified once verifies again until it expires: the signature, issuer, audience and type are facts
    // of the exact string. So a client sending the same token on every request pays for the HMAC check (WebCrypto,
    // the largest CPU cost of an authenticated request) once. Only expiry is checked again; revocation is not a
    // property of access tokens (the user is still loaded and checked on every request).
    const hit = this.verifiedSubject(token);
    if (hit !== undefined) return hit;
    const key = await this.signingKey(); // outside the try: a database failure is not a bad token
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
      if (payload.typ !== 'access' || typeof payload.sub !== 'string') return undefined;
      if (typeof payload.exp === 'number') {
        if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
        this.verified.set(token, { sub: payload.sub, exp: payload.exp });
      }
      return payload.sub;
    } catch {
      return undefined;
    }
  }
}
