// Text → vectors, behind one interface so ingestion and retrieval never know which backend runs.
export interface Embedder {
  /** Stable identity recorded per workspace index, e.g. "openai:text-embedding-3-small"; a change means re-embedding. */
  readonly id: string;
  /** Vector length; may require one call to the backend the first time. */
  dimensions(): Promise<number>;
  /** One vector per input text, in order. Implementations batch and retry internally. */
  embed(texts: string[], signal?: AbortSignal): Promise<number[][]>;
  /** Frees in-process resources (the llamacpp model); called when the server stops. */
  close?(): Promise<void>;
}
