import { describe, expect, it } from 'vitest';
import { M, parseRoles, resolveModules, RoleError } from './graph.js';

describe('module graph', () => {
  it('starts every role for all', () => {
    const order = resolveModules([M.all]);
    for (const r of [M.gateway, M.ingest, M.retrieval, M.chat, M.models, M.web]) expect(order).toContain(r);
  });

  it('never starts an LLM, the queue or auth for --role retrieval', () => {
    const order = resolveModules(parseRoles('retrieval'));
    expect(order).not.toContain(M.llm);
    expect(order).not.toContain(M.jobs);
    expect(order).not.toContain(M.auth);
    expect(order).toEqual(expect.arrayContaining([M.db, M.embedder, M.http, M.retrieval]));
  });

  it('starts only HTTP for the web and models roles', () => {
    expect(resolveModules(parseRoles('web'))).toEqual([M.http, M.web]);
    expect(resolveModules(parseRoles('models'))).toEqual([M.http, M.models]);
  });

  it('orders dependencies first, and an in-process client after the role it wraps', () => {
    const order = resolveModules(parseRoles('gateway,retrieval'));
    const at = (m: string) => order.indexOf(m as never);
    expect(at(M.db)).toBeLessThan(at(M.auth));
    expect(at(M.retrieval)).toBeLessThan(at(M.retrievalClient));
    expect(at(M.retrievalClient)).toBeLessThan(at(M.gateway));
  });

  it('rejects unknown roles with the list of valid ones', () => {
    expect(() => parseRoles('gateway,search')).toThrow(RoleError);
    expect(() => parseRoles('gateway,search')).toThrow(/unknown role "search"; choose from: gateway, ingest, retrieval, chat, models, web, all/);
    expect(() => parseRoles(' , ')).toThrow(/no role given/);
  });

  it('does not let a user pick an internal module', () => {
    expect(() => parseRoles('db')).toThrow(RoleError);
  });
});
