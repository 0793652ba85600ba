import { SignJWT, jwtVerify } from 'jose';
import { randomToken } from './secrets.js';
import type { SettingsRepo } from './repositories.js';

// Access tokens: short-lived HS256 JWTs. Only HS256 is ever accepted (no `none`, no algorithm confusion), and the
// issuer, audience and our `typ` claim must match, so no other token (or another service's JWT) passes as one.

export const ISSUER = 'docupod';
export const AUDIENCE = 'docupod';
const JWT_SECRET_SETTING = 'jwt_secret';

export class AccessTokens {
  private key?: Promise<Uint8Array>;

  constructor(
    private readonly opts: { secret?: string; ttlMs: number; settings: SettingsRepo },
  ) {}

  /**
   * The configured secret, or one generated once and kept in instance_settings so every pod signs with the same key.
   * Loaded on first use; a failure is retried on the next call.
   */
  private signingKey(): Promise<Uint8Array> {
    this.key ??= (async () => {
      const secret = this.opts.secret ?? (await this.opts.settings.getOrInit(JWT_SECRET_SETTING, randomToken(48)));
      return new TextEncoder().encode(secret);
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

  /** The user id of a valid access token, or undefined for anything else (expired, forged, wrong type, garbage). */
  async verify(token: string): Promise<string | undefined> {
    const key = await this.signingKey(); // outside the try: a database failure is not a bad token
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
      if (payload.typ !== 'access' || typeof payload.sub !== 'string') return undefined;
      return payload.sub;
    } catch {
      return undefined;
    }
  }
}
