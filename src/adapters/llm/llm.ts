// Text generation behind one interface, so the agent never knows which backend runs: the built-in extractive
// answerer, any OpenAI-compatible server, or Ollama's native API. Every adapter streams tokens, reports usage,
// honours an AbortSignal and fails with a DocupodError that names the backend.

export interface LlmMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One numbered source the answer may cite as [n]; the extractive adapter answers from these alone. */
export interface GroundingSource {
  n: number;
  text: string;
  source: string;
  heading?: string;
  /** Where the text starts in its document (characters), so sentences from one document are read in its order. */
  start?: number;
}

export interface GenerateRequest {
  messages: LlmMessage[];
  /** Overrides the configured model (pass-through of /v1 model names). */
  model?: string;
  maxTokens?: number;
  temperature?: number;
  stop?: string[];
  signal?: AbortSignal;
  /** The standalone question and its numbered sources, when the request is a grounded answer. */
  grounding?: {
    question: string;
    sources: GroundingSource[];
    /** The standalone form of a follow-up: used when the question alone matches nothing (e.g. "and where is it?"). */
    standalone?: string;
  };
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error' | string;

export type LlmEvent =
  | { type: 'token'; text: string }
  | { type: 'done'; usage: Usage; finishReason: FinishReason; model: string };

export interface Completion {
  text: string;
  usage: Usage;
  finishReason: FinishReason;
  model: string;
}

export interface Llm {
  /** e.g. "openai:gpt-4o-mini", "ollama:llama3.2", "extractive". */
  readonly id: string;
  readonly provider: 'extractive' | 'openai' | 'ollama' | 'llamacpp';
  readonly model: string;
  /** How many tokens of prompt + answer the model takes; the agent trims sources to fit. */
  readonly contextTokens: number;
  /** False for the extractive adapter: it cannot rewrite questions or follow instructions. */
  readonly generative: boolean;
  /** Streams the answer: zero or more `token` events, then exactly one `done` (or a thrown DocupodError). */
  stream(req: GenerateRequest): AsyncIterable<LlmEvent>;
  /** Model names the backend offers (for /v1/models); the configured one when the backend cannot list. */
  listModels(signal?: AbortSignal): Promise<string[]>;
  /** true, or why the backend does not answer (for /readyz). */
  ready(): Promise<true | string>;
  /** Frees in-process resources (the llamacpp model); called when the server stops. */
  close?(): Promise<void>;
}

/** Collects a stream into one completion. */
export async function complete(llm: Llm, req: GenerateRequest): Promise<Completion> {
  let text = '';
  for await (const ev of llm.stream(req)) {
    if (ev.type === 'token') text += ev.text;
    else return { text, usage: ev.usage, finishReason: ev.finishReason, model: ev.model };
  }
  throw new Error(`${llm.id} ended its stream without a done event`);
}

/**
 * A rough token count (about four characters per token for English, as OpenAI's guidance says); used for the context
 * budget and for usage when a backend does not report it.
 */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

export function estimateMessagesTokens(messages: LlmMessage[]): number {
  return messages.reduce((n, m) => n + estimateTokens(m.content) + 4, 2);
}
