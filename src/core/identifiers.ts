/**
 * Identifiers kept whole as well as split, for lexical search. Postgres's parser splits `max_wal_size` into
 * max/wal/size and keeps `/etc/shadow` or `sources.list` whole only, so neither form finds the other. For every token
 * made of letters/digits joined by `_ - . /` this adds the joined form (`maxwalsize`, `etcshadow`, `aptget`; so
 * `pg_dump`, `pg-dump` and `pgdump` meet) and, where Postgres keeps the token whole (`/` and `.`), its parts.
 * URLs are left alone (their parts would inflate common words such as "debian" or "www").
 *
 * The index side (ingest) and the query side (retrieval) must produce exactly the same words, hence one function.
 */
export function identifierText(text: string): string {
  const out: string[] = [];
  const clean = text.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, ' ');
  for (const m of clean.matchAll(/\/?[\p{L}\p{N}]+(?:[_\-./][\p{L}\p{N}]+)+|\/[\p{L}\p{N}]+/gu)) {
    const token = m[0];
    if (!/\p{L}/u.test(token)) continue; // version numbers, dates
    const parts = token.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (parts.length > 1) out.push(parts.join('').toLowerCase());
    if (/[./]/.test(token)) out.push(...parts);
  }
  return out.join(' ');
}
