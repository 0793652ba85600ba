import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/schema.js';
import { callersOf, describeRoles, graphOptions, internalLayout, M, parseRoles, requireInternalToken, resolveModules, RoleError } from './graph.js';

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
    expect(order).not.toContain(M.reranker);
    expect(order).toEqual(expect.arrayContaining([M.db, M.embedder, M.http, M.retrieval]));
  });

  it('starts the reranker with the chat role only, before it', () => {
    const chat = resolveModules(parseRoles('chat'));
    expect(chat.indexOf(M.reranker)).toBeGreaterThanOrEqual(0);
    expect(chat.indexOf(M.reranker)).toBeLessThan(chat.indexOf(M.chat));
    for (const role of ['gateway', 'ingest', 'retrieval', 'models', 'web']) expect(resolveModules(parseRoles(role))).not.toContain(M.reranker);
  });

  it('starts only HTTP for the web and models roles', () => {
    expect(resolveModules(parseRoles('web'))).toEqual([M.http, M.web]);
    expect(resolveModules(parseRoles('models'))).toEqual([M.http, M.models, M.internalApi]);
  });

  it('starts auth (not the gateway) before the models role alone exactly when it verifies users on a shared database', () => {
    const verify = { modelsVerifyUsers: true };
    const order = resolveModules(parseRoles('models'), verify);
    expect(order).toEqual([M.db, M.http, M.auth, M.models, M.internalApi]);
    expect(order).not.toContain(M.gateway);
    // Other roles' graphs do not change; with the gateway, auth is there anyway.
    expect(resolveModules(parseRoles('web'), verify)).toEqual([M.http, M.web]);
    expect(resolveModules(parseRoles('retrieval'), verify)).not.toContain(M.auth);
    expect(resolveModules([M.all], verify)).toEqual(resolveModules([M.all]));
  });

  it('derives the option from DATABASE_URL and DOCUPOD_MODELS_INFERENCE', () => {
    const url = { DATABASE_URL: 'postgres://u:p@db:5432/docupod' };
    expect(graphOptions(loadConfig(url))).toEqual({ modelsVerifyUsers: true });
    expect(graphOptions(loadConfig({ ...url, DOCUPOD_MODELS_INFERENCE: 'open' }))).toEqual({ modelsVerifyUsers: false });
    expect(graphOptions(loadConfig({}))).toEqual({ modelsVerifyUsers: false });
  });

  it('lists both graphs of the models role in list-roles', () => {
    const models = describeRoles().split('\n').slice(describeRoles().split('\n').indexOf('models'));
    expect(models[2]).toBe('  starts:     http, internal-api');
    expect(models[3]).toMatch(/^ {2}with DATABASE_URL and DOCUPOD_MODELS_INFERENCE=authenticated .*also: db, auth$/);
    expect(describeRoles().match(/with DATABASE_URL/g)).toHaveLength(1);
  });

  it('starts the internal API after every role it may serve, and the models role after auth when both run', () => {
    const order = resolveModules([M.all]);
    for (const r of [M.ingest, M.retrieval, M.chat, M.models]) expect(order.indexOf(M.internalApi)).toBeGreaterThan(order.indexOf(r));
    expect(order.indexOf(M.models)).toBeGreaterThan(order.indexOf(M.auth));
    expect(resolveModules(parseRoles('gateway,web'))).not.toContain(M.internalApi);
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

  it('derives who calls each contract from the dependency map', () => {
    expect(callersOf('retrieval').sort()).toEqual([M.chat, M.gateway]);
    expect(callersOf('ingest')).toEqual([M.gateway]);
    expect(callersOf('gateway')).toEqual([]);
  });

  it('serves a role internally only when it listens and a caller runs elsewhere', () => {
    const layout = (roles: string, listens = true) => internalLayout(new Set(resolveModules(parseRoles(roles))), listens);
    expect(layout('all')).toEqual({ served: [], remote: [] });
    expect(layout('gateway,ingest,retrieval,chat,models')).toEqual({ served: [], remote: [] });
    expect(layout('chat,retrieval')).toEqual({ served: ['retrieval', 'chat'], remote: [] });
    expect(layout('gateway,chat')).toEqual({ served: [], remote: ['ingest', 'retrieval', 'models'] });
    expect(layout('chat')).toEqual({ served: ['chat'], remote: ['retrieval'] });
    expect(layout('web')).toEqual({ served: [], remote: [] });
    // A CLI command's own runtime never serves anything.
    expect(layout('ingest,retrieval,chat', false)).toEqual({ served: [], remote: [] });
  });

  it('refuses a split layout without the internal token, naming the variable', () => {
    expect(() => requireInternalToken({ served: ['models'], remote: [] }, undefined)).toThrow(RoleError);
    expect(() => requireInternalToken({ served: ['models'], remote: [] }, undefined)).toThrow(/DOCUPOD_INTERNAL_TOKEN is not set, and this process serves the internal API of models to gateway in other processes/);
    expect(() => requireInternalToken({ served: [], remote: ['chat'] }, undefined)).toThrow(/calls chat in other processes/);
    expect(() => requireInternalToken({ served: [], remote: [] }, undefined)).not.toThrow();
    expect(() => requireInternalToken({ served: ['chat'], remote: ['retrieval'] }, 'a-token-of-16-chars')).not.toThrow();
  });

  it('does not let a user pick an internal module', () => {
    expect(() => parseRoles('db')).toThrow(RoleError);
  });
});
