import { DocupodError, Problems } from '../../core/errors.js';

// Tensors as the Open Inference Protocol v2 describes them (datatype, shape, row-major data), held in typed arrays.
// Every bad-input case gets its own reason: it is the `reason` member of the problem+json body and the label of
// docupod_models_errors_total, so a client and a dashboard see the same words.

export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

export interface HostTensor {
  datatype: Datatype;
  shape: number[];
  /** Row-major; BOOL is a Uint8Array of 0/1, BYTES an array of UTF-8 strings. */
  data: TensorData;
}

/** Why a request was rejected; bounded, used as a metric label. */
export type ErrorReason =
  | 'invalid_request'
  | 'missing_input'
  | 'unknown_input'
  | 'duplicate_input'
  | 'unknown_output'
  | 'wrong_datatype'
  | 'wrong_shape'
  | 'data_length_mismatch'
  | 'invalid_data'
  | 'unsupported'
  | 'model_not_found'
  | 'overloaded'
  | 'runtime_error';

/**
 * A rejected inference request: problem+json with `reason` and, for OIP clients (KServe, Triton) that read the
 * protocol's `{"error": "…"}` body, the same text under `error`.
 */
export function inferError(reason: ErrorReason, detail: string): DocupodError {
  const problem =
    reason === 'model_not_found'
      ? Problems.notFound
      : reason === 'overloaded'
        ? Problems.unavailable
        : reason === 'runtime_error'
          ? Problems.internal
          : Problems.badRequest;
  return new DocupodError(problem, detail, { reason, error: detail, ...(reason === 'overloaded' ? { retryAfter: 1 } : {}) });
}

export function reasonOf(err: unknown): ErrorReason {
  if (err instanceof DocupodError && typeof err.extra.reason === 'string') return err.extra.reason as ErrorReason;
  return 'runtime_error';
}

export const elementCount = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
export const showShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  // JSON numbers are float64: 64-bit integers are exact only up to 2^53.
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

function allocate(datatype: Datatype, n: number): TensorData {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(n);
    case 'UINT16':
      return new Uint16Array(n);
    case 'UINT32':
      return new Uint32Array(n);
    case 'UINT64':
      return new BigUint64Array(n);
    case 'INT8':
      return new Int8Array(n);
    case 'INT16':
      return new Int16Array(n);
    case 'INT32':
      return new Int32Array(n);
    case 'INT64':
      return new BigInt64Array(n);
    case 'FP32':
      return new Float32Array(n);
    case 'FP64':
      return new Float64Array(n);
    case 'BYTES':
      return new Array<string>(n);
    case 'FP16':
      throw inferError('unsupported', 'datatype FP16 is not supported over JSON; send FP32');
  }
}

/**
 * Flattens `data` (flat row-major, or nested in the tensor's natural shape, both allowed by the protocol) and checks
 * that it holds exactly the shape's element count. Nested data must be rectangular and match the shape level by level.
 */
export function flattenData(input: string, data: unknown, shape: readonly number[]): unknown[] {
  if (!Array.isArray(data)) throw inferError('invalid_data', `input '${input}': data must be an array`);
  const expected = elementCount(shape);
  const nested = data.some(Array.isArray);
  let flat: unknown[];
  if (!nested) flat = data;
  else {
    flat = [];
    const walk = (node: unknown, depth: number, path: string) => {
      if (depth === shape.length) {
        if (Array.isArray(node)) throw inferError('wrong_shape', `input '${input}': data is nested deeper than shape ${showShape(shape)} at ${path}`);
        flat.push(node);
        return;
      }
      if (!Array.isArray(node) || node.length !== shape[depth])
        throw inferError(
          'data_length_mismatch',
          `input '${input}': nested data does not match shape ${showShape(shape)}: ${path} has ${Array.isArray(node) ? node.length : 'no'} elements, expected ${shape[depth]}`,
        );
      node.forEach((child, i) => walk(child, depth + 1, `${path}[${i}]`));
    };
    walk(data, 0, 'data');
  }
  if (flat.length !== expected)
    throw inferError(
      'data_length_mismatch',
      `input '${input}': shape ${showShape(shape)} holds ${expected} elements but data has ${flat.length}`,
    );
  return flat;
}

/** JSON values → the typed array of `datatype`, checking each element's type and range. */
export function toTypedData(input: string, datatype: Datatype, flat: readonly unknown[]): TensorData {
  const out = allocate(datatype, flat.length);
  const bad = (i: number, want: string) =>
    inferError('invalid_data', `input '${input}': element ${i} (${JSON.stringify(flat[i])?.slice(0, 40)}) is not ${want}, as datatype ${datatype} requires`);
  if (datatype === 'BYTES') {
    const strings = out as string[];
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (typeof v !== 'string') throw bad(i, 'a string');
      strings[i] = v;
    }
    return out;
  }
  if (datatype === 'BOOL') {
    const bools = out as Uint8Array;
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (typeof v !== 'boolean') throw bad(i, 'true or false');
      bools[i] = v ? 1 : 0;
    }
    return out;
  }
  const range = INT_RANGE[datatype];
  if (range) {
    const [lo, hi] = range;
    const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(i, 'an integer');
      if (v < lo || v > hi) throw bad(i, `within [${lo}, ${hi}]`);
      if (big) (out as BigInt64Array)[i] = BigInt(v) as never;
      else (out as Int32Array)[i] = v;
    }
    return out;
  }
  const floats = out as Float32Array | Float64Array;
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number') throw bad(i, 'a number');
    floats[i] = v;
  }
  return out;
}

/** Typed array → JSON-ready flat array (64-bit integers become numbers; exact up to 2^53). */
export function toJsonData(t: HostTensor): Array<number | string | boolean> {
  const d = t.data;
  if (Array.isArray(d)) return d;
  if (t.datatype === 'BOOL') return Array.from(d as Uint8Array, (v) => v !== 0);
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, Number);
  return Array.from(d as Float32Array);
}

/** Row-major flat data → nested arrays in the tensor's shape (for the plain-JSON /predict answers). */
export function nest(flat: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return [...flat];
  const [, ...rest] = shape;
  const stride = elementCount(rest);
  const out: unknown[] = [];
  for (let i = 0; i < shape[0]!; i++) out.push(nest(flat.slice(i * stride, (i + 1) * stride), rest));
  return out;
}

/** The shape of nested JSON arrays (for /predict, where the caller sends no shape). */
export function inferShape(data: unknown): number[] {
  const shape: number[] = [];
  let node = data;
  while (Array.isArray(node)) {
    shape.push(node.length);
    node = node[0];
  }
  return shape;
}

// ---- batching: requests are concatenated along dimension 0 and the outputs cut back into per-request slices ----

export function concatRows(parts: readonly HostTensor[]): HostTensor {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  const rows = parts.reduce((n, p) => n + p.shape[0]!, 0);
  const shape = [rows, ...first.shape.slice(1)];
  if (first.datatype === 'BYTES') return { datatype: 'BYTES', shape, data: parts.flatMap((p) => p.data as string[]) };
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  const out = allocate(first.datatype, total) as Float32Array;
  let offset = 0;
  for (const p of parts) {
    out.set(p.data as Float32Array, offset);
    offset += p.data.length;
  }
  return { datatype: first.datatype, shape, data: out };
}

export function sliceRows(t: HostTensor, start: number, count: number): HostTensor {
  const stride = elementCount(t.shape.slice(1));
  const data = t.data.slice(start * stride, (start + count) * stride) as TensorData;
  return { datatype: t.datatype, shape: [count, ...t.shape.slice(1)], data };
}
