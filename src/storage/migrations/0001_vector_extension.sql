-- pgvector is optional: where the server has it (PGlite always does), enable it; elsewhere docupod runs lexical-only
-- and says so at start. A role without CREATE privilege can have an admin run `CREATE EXTENSION vector` beforehand.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS vector;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'pgvector is available but this role cannot create it; running lexical-only';
    END;
  END IF;
END
$$;
