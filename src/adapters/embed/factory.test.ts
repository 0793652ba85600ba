import { describe, expect, it } from 'vitest';
import { DocupodError, Problems } from '../../core/errors.js';
import { createEmbedder } from './factory.js';
import { LlamaCppEmbedder } from './llamacpp.js';
import { OllamaEmbedder } from './ollama.js';
import { OpenAiEmbedder } from './openai.js';
import { TransformersEmbedder } from './transformers.js';

function thrown(fn: () => unknown): DocupodError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DocupodError);
    return err as DocupodError;
  }
  throw new Error('expected an error');
}

describe('createEmbedder', () => {
  it('returns no embedder for none (lexical search only)', () => {
    expect(createEmbedder({ provider: 'none' })).toBeUndefined();
  });

  it('builds each adapter from the config slice', () => {
    const openai = createEmbedder({ provider: 'openai', baseUrl: 'http://127.0.0.1:8000/v1', model: 'bge-small', apiKey: 'k' });
    expect(openai).toBeInstanceOf(OpenAiEmbedder);
    expect(openai!.id).toBe('openai:bge-small');
    const ollama = createEmbedder({ provider: 'ollama', model: 'nomic-embed-text' });
    expect(ollama).toBeInstanceOf(OllamaEmbedder);
    expect(ollama!.id).toBe('ollama:nomic-embed-text:latest');
    const local = createEmbedder({ provider: 'transformers', model: '/models/all-MiniLM-L6-v2' });
    expect(local).toBeInstanceOf(TransformersEmbedder);
    expect(local!.id).toBe('transformers:all-MiniLM-L6-v2');
  });

  it('names the missing variable', () => {
    expect(thrown(() => createEmbedder({ provider: 'openai', model: 'm' })).message).toMatch(/DOCUPOD_EMBED_BASE_URL is required/);
    expect(thrown(() => createEmbedder({ provider: 'ollama' })).message).toMatch(/DOCUPOD_EMBED_MODEL is required when DOCUPOD_EMBED_PROVIDER=ollama/);
    expect(thrown(() => createEmbedder({ provider: 'transformers' })).message).toMatch(/local transformers\.js model directory/);
    expect(thrown(() => createEmbedder({ provider: 'openai', baseUrl: 'not a url', model: 'm' })).message).toMatch(/not a URL/);
  });

  it('builds the llamacpp embedder from a GGUF path without loading it (the file is checked on first use)', () => {
    const gguf = createEmbedder({ provider: 'llamacpp', model: '/models/nomic-embed-text-v1.5.Q4_K_M.gguf' });
    expect(gguf).toBeInstanceOf(LlamaCppEmbedder);
    expect(gguf!.id).toBe('llamacpp:nomic-embed-text-v1.5.Q4_K_M');
    const err = thrown(() => createEmbedder({ provider: 'llamacpp' }));
    expect(err.problem).toBe(Problems.badRequest);
    expect(err.message).toMatch(/DOCUPOD_EMBED_MODEL is required when DOCUPOD_EMBED_PROVIDER=llamacpp.*GGUF/);
  });
});
