// Parse limits and the errors that report them. Each message names the environment variable that raises the limit,
// because the person reading a failed document's reason is usually the operator who can change it.
import { DocupodError, Problems, type ProblemType } from '../../../core/errors.js';

export interface ParseLimits {
  /** Largest accepted file, in bytes. */
  maxBytes: number;
  /** Most pages accepted in a PDF. */
  maxPages: number;
  /** Largest total uncompressed size of a DOCX (zip) archive, in bytes. */
  maxDecompressedBytes: number;
  /** Wall time for parsing one file; the worker thread is terminated when it runs out. */
  timeoutMs: number;
}

/** The configuration variable behind each limit (defined by the config schema; named here for error messages). */
export const LimitEnv = {
  maxBytes: 'DOCUPOD_INGEST_MAX_BYTES',
  maxPages: 'DOCUPOD_INGEST_MAX_PAGES',
  maxDecompressedBytes: 'DOCUPOD_INGEST_MAX_DECOMPRESSED_BYTES',
  timeoutMs: 'DOCUPOD_INGEST_PARSE_TIMEOUT',
} as const satisfies Record<keyof ParseLimits, string>;

/** Conservative defaults for callers that have no configuration (CLI one-offs, tests). */
export const DEFAULT_LIMITS: ParseLimits = {
  maxBytes: 50 * 1024 * 1024,
  maxPages: 500,
  maxDecompressedBytes: 200 * 1024 * 1024,
  timeoutMs: 60_000,
};

/** Every parse failure is a property of the file: retrying the same bytes cannot help. */
export function parseError(problem: ProblemType, detail: string, options?: ErrorOptions): DocupodError {
  return new DocupodError(problem, detail, { retryable: false }, options);
}

export const unprocessable = (detail: string, cause?: unknown) =>
  parseError(Problems.unprocessable, detail, cause === undefined ? undefined : { cause });
export const tooLarge = (detail: string) => parseError(Problems.payloadTooLarge, detail);
export const unsupported = (detail: string) => parseError(Problems.unsupportedMediaType, detail);

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function checkFileSize(size: number, filename: string, limits: ParseLimits): void {
  if (size > limits.maxBytes) {
    throw tooLarge(
      `"${filename}" is ${formatBytes(size)}; the limit is ${formatBytes(limits.maxBytes)} (${LimitEnv.maxBytes})`,
    );
  }
}
