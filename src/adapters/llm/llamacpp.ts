// llama.cpp in process (node-llama-cpp) from a GGUF file: the chat template comes from the file (node-llama-cpp picks
// its chat wrapper from tokenizer.chat_template), tokens stream as they are generated, an AbortSignal stops the
// generation, and usage is counted in real tokens.
//
// One model and one context are loaded per adapter; the context has `parallel` sequences (llama.cpp batches their
// tokens together), so that many answers are generated at once and further requests wait in a bounded queue.
// The file is checked and probe-loaded in a child process first (gguf.ts): a malformed file fails the request with a
// DocupodError naming the file and the problem, and the server keeps running.
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { ChatHistoryItem, ChatWrapper, LlamaChatResponse, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import { DocupodError, Problems } from '../../core/errors.js';
import { checkGgufBeforeLoad, defaultThreads, getLlamaRuntime, inspectGguf, type GgufSummary } from './gguf.js';
import type { LlmLog } from './http-stream.js';
import type { GenerateRequest, Llm, LlmEvent, LlmMessage } from './llm.js';

export interface LlamaCppLlmOptions {
  /** The GGUF file. */
  modelPath: string;
  /** Tokens per answer (prompt + generated); default min(4096, the model's training context). */
  contextTokens?: number;
  /** CPU threads for evaluation (default: cores up to 4). */
  threads?: number;
  /** Answers generated at once on the one loaded model (context sequences; default 1). */
  parallel?: number;
  /** Requests allowed to wait for a free sequence; beyond it 503 with Retry-After (default 32). */
  maxQueue?: number;
  /** Defaults for requests that do not say. */
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  /** Probe-load the file in a child process before loading it here (default true). */
  probe?: boolean;
  log?: LlmLog & { info?(obj: object, msg: string): void };
}

/** Counters for tests, benchmarks and metrics. */
export interface LlamaCppStats {
  loaded: boolean;
  active: number;
  queued: number;
  generatedTokens: number;
  completed: number;
  cancelled: number;
}

interface Loaded {
  model: LlamaModel;
  context: LlamaContext;
  summary: GgufSummary;
  /** The chat format, resolved once from the file's template: resolving it costs ~0.3 s of CPU per LlamaChat. */
  chatWrapper: ChatWrapper;
}

const DEFAULT_CONTEXT = 4096;

export class LlamaCppLlm implements Llm {
  readonly provider = 'llamacpp' as const;
  readonly generative = true;
  readonly id: string;
  readonly model: string;
  readonly path: string;
  private readonly parallel: number;
  private readonly maxQueue: number;
  private loading: Promise<Loaded> | undefined;
  private loadedContextTokens: number | undefined;
  private readonly free: LlamaContextSequence[] = [];
  private readonly waiters: Array<(seq: LlamaContextSequence) => void> = [];
  private readonly counters = { active: 0, generatedTokens: 0, completed: 0, cancelled: 0 };
  private closed = false;
  /** The last failed load and the file version it was about (size and mtime). */
  private failed: { message: string; stamp: string } | undefined;

  constructor(private readonly o: LlamaCppLlmOptions) {
    if (!o.modelPath) throw new DocupodError(Problems.badRequest, 'the llamacpp LLM needs a GGUF file (DOCUPOD_LLM_MODEL)', { retryable: false });
    this.path = resolve(o.modelPath);
    this.model = basename(this.path).replace(/\.gguf$/i, '');
    this.id = `llamacpp:${this.model}`;
    this.parallel = Math.max(1, o.parallel ?? 1);
    this.maxQueue = Math.max(0, o.maxQueue ?? 32);
  }

  get contextTokens(): number {
    return this.loadedContextTokens ?? this.o.contextTokens ?? DEFAULT_CONTEXT;
  }

  stats(): LlamaCppStats {
    return { loaded: this.loadedContextTokens !== undefined, queued: this.waiters.length, ...this.counters };
  }

  /** Loads the model (checked and probed first); concurrent callers share one load, a failed load is retried next time. */
  load(): Promise<Loaded> {
    if (this.closed) return Promise.reject(new DocupodError(Problems.llmUnavailable, `${this.id} is closed`));
    this.loading ??= this.open().then(
      (loaded) => {
        this.failed = undefined;
        return loaded;
      },
      async (err: unknown) => {
        this.loading = undefined;
        this.failed = { message: err instanceof Error ? err.message : String(err), stamp: await fileStamp(this.path) };
        throw err;
      },
    );
    return this.loading;
  }

  private async open(): Promise<Loaded> {
    const summary = await checkGgufBeforeLoad(this.path, { probe: this.o.probe });
    const llama = await getLlamaRuntime(this.o.log);
    let model: LlamaModel | undefined;
    try {
      model = await llama.loadModel({ modelPath: this.path });
      const contextSize = Math.min(this.o.contextTokens ?? DEFAULT_CONTEXT, model.trainContextSize || DEFAULT_CONTEXT);
      const context = await model.createContext({ contextSize, sequences: this.parallel, threads: this.o.threads ?? defaultThreads() });
      for (let i = 0; i < this.parallel; i++) this.free.push(context.getSequence());
      const { LlamaChat } = await import('node-llama-cpp');
      const first = new LlamaChat({ contextSequence: this.free[0]!, autoDisposeSequence: false });
      const chatWrapper = first.chatWrapper;
      first.dispose({ disposeSequence: false });
      this.loadedContextTokens = context.contextSize;
      this.o.log?.info?.({ model: this.path, contextTokens: context.contextSize, parallel: this.parallel, chatFormat: chatWrapper.wrapperName, architecture: summary.architecture, quantisation: summary.quantisation }, 'llamacpp model loaded');
      return { model, context, summary, chatWrapper };
    } catch (err) {
      await model?.dispose().catch(() => undefined);
      if (err instanceof DocupodError) throw err;
      throw new DocupodError(Problems.llmUnavailable, `GGUF model ${this.path}: llama.cpp could not load it: ${err instanceof Error ? err.message : String(err)}`, { retryable: false, model: this.path }, { cause: err });
    }
  }

  private async acquire(signal?: AbortSignal): Promise<LlamaContextSequence> {
    await this.load();
    const seq = this.free.pop();
    if (seq) return seq;
    if (this.waiters.length >= this.maxQueue)
      throw new DocupodError(Problems.unavailable, `${this.id} is busy: ${this.parallel} answers running and ${this.waiters.length} waiting (DOCUPOD_LLM_PARALLEL, DOCUPOD_LLM_MAX_QUEUE)`, { retryAfter: 1 });
    return new Promise((ok, fail) => {
      const waiter = (s: LlamaContextSequence) => {
        signal?.removeEventListener('abort', onAbort);
        ok(s);
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        fail(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private async release(seq: LlamaContextSequence): Promise<void> {
    // Every answer starts from an empty sequence: nothing of one request's prompt is visible to the next.
    await seq.clearHistory().catch(() => undefined);
    if (this.closed) return;
    const next = this.waiters.shift();
    if (next) next(seq);
    else this.free.push(seq);
  }

  async *stream(req: GenerateRequest): AsyncGenerator<LlmEvent> {
    req.signal?.throwIfAborted();
    const { LlamaChat } = await import('node-llama-cpp');
    const { chatWrapper } = await this.load();
    const seq = await this.acquire(req.signal);
    this.counters.active++;
    // Stops the generation when the caller aborts or stops reading (return() on this generator).
    const stop = new AbortController();
    const onAbort = () => stop.abort(req.signal?.reason);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let chat: InstanceType<typeof LlamaChat>;
    try {
      chat = new LlamaChat({ contextSequence: seq, autoDisposeSequence: false, chatWrapper });
    } catch (err) {
      req.signal?.removeEventListener('abort', onAbort);
      this.counters.active--;
      await this.release(seq);
      throw new DocupodError(Problems.llmUnavailable, `${this.id}: ${err instanceof Error ? err.message : String(err)}`, { retryable: false }, { cause: err });
    }
    const pending: string[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: unknown;
    let completionTokens = 0;
    const before = seq.tokenMeter.getState();
    let response: LlamaChatResponse | undefined;
    const generation = chat
      .generateResponse(toHistory(req.messages), {
        signal: stop.signal,
        stopOnAbortSignal: true,
        maxTokens: req.maxTokens ?? this.o.maxTokens ?? Math.max(16, Math.floor(this.contextTokens / 4)),
        temperature: req.temperature ?? this.o.temperature ?? 0.7,
        topP: this.o.topP,
        customStopTriggers: req.stop?.length ? req.stop : undefined,
        onToken: (tokens) => {
          completionTokens += tokens.length;
          this.counters.generatedTokens += tokens.length;
        },
        onTextChunk: (text) => {
          if (!text) return;
          pending.push(text);
          wake?.();
        },
      })
      .then(
        (r) => {
          response = r;
        },
        (err: unknown) => {
          failure = err;
        },
      )
      .finally(() => {
        finished = true;
        wake?.();
      });
    let ended = false;
    try {
      for (;;) {
        // Tokens that arrived while the consumer was busy (writing the previous one to a socket) go out as one event:
        // fewer writes under load, the same text.
        if (pending.length > 0) yield { type: 'token', text: pending.splice(0).join('') };
        if (finished) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      ended = true;
      if (req.signal?.aborted) req.signal.throwIfAborted();
      if (failure) throw failure instanceof DocupodError ? failure : new DocupodError(Problems.llmUnavailable, `${this.id} failed mid-answer: ${failure instanceof Error ? failure.message : String(failure)}`, { retryable: false }, { cause: failure });
      const after = seq.tokenMeter.getState();
      const promptTokens = Math.max(0, after.usedInputTokens - before.usedInputTokens - Math.max(0, completionTokens - 1));
      const reason = response?.metadata.stopReason;
      yield {
        type: 'done',
        usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
        finishReason: reason === 'maxTokens' ? 'length' : reason === 'abort' ? 'cancelled' : 'stop',
        model: req.model ?? this.model,
      };
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
      if (!finished) stop.abort(new Error('the consumer stopped reading'));
      await generation;
      if (!ended || req.signal?.aborted || response?.metadata.stopReason === 'abort') this.counters.cancelled++;
      else this.counters.completed++;
      this.counters.active--;
      chat.dispose({ disposeSequence: false });
      await this.release(seq);
    }
  }

  async listModels(): Promise<string[]> {
    return [this.model];
  }

  async ready(): Promise<true | string> {
    if (this.loadedContextTokens !== undefined) return true;
    try {
      // Not loaded yet: loading is not ready (a large file takes a while); a failed load says why until the file is
      // replaced; before the first load, a readable, well-formed file is ready.
      if (this.loading) return `loading ${this.path}`;
      if (this.failed && this.failed.stamp === (await fileStamp(this.path))) return this.failed.message;
      else await inspectGguf(this.path);
      return true;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const loading = this.loading;
    this.loading = undefined;
    const loaded = await loading?.catch(() => undefined);
    this.free.length = 0;
    await loaded?.context.dispose().catch(() => undefined);
    await loaded?.model.dispose().catch(() => undefined);
  }
}

async function fileStamp(path: string): Promise<string> {
  return stat(path).then(
    (s) => `${s.size}:${s.mtimeMs}`,
    () => 'missing',
  );
}

/** docupod's messages → node-llama-cpp's chat history, ending with the empty model turn to generate. */
function toHistory(messages: LlmMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((m) =>
    m.role === 'system' ? { type: 'system', text: m.content } : m.role === 'user' ? { type: 'user', text: m.content } : { type: 'model', response: [m.content] },
  );
  history.push({ type: 'model', response: [] });
  return history;
}
