/** Postgres unique_violation (23505), through whatever wrappers the driver or Drizzle added. */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++)
    if ((e as { code?: unknown }).code === '23505') return true;
  return false;
}
