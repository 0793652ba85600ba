// A minimal zip central-directory reader, used for two things before any library touches the archive:
// telling a DOCX from other zip files (detection), and refusing zip bombs (mammoth inflates entries in memory with
// jszip and has no size limit of its own).
import { inflateRawSync } from 'node:zlib';
import { LimitEnv, formatBytes, tooLarge, unprocessable, type ParseLimits } from './limits.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
/** Real DOCX files have tens to a few hundred entries; tens of thousands is an attack on our bookkeeping. */
const MAX_ENTRIES = 10_000;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Reads the central directory. Returns null when the bytes are not a readable zip (the caller decides whether that
 * is an error). ZIP64 archives are reported as unreadable: no word processor writes a DOCX that needs them.
 */
export function readZipEntries(bytes: Uint8Array): ZipEntry[] | null {
  const dv = view(bytes);
  // The end-of-central-directory record sits in the last 22 bytes plus an optional comment of up to 64 KiB.
  const stop = Math.max(0, bytes.length - 22 - 0xffff);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= stop; i--) {
    if (dv.getUint32(i, true) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return null;
  const count = dv.getUint16(eocd + 10, true);
  const cdSize = dv.getUint32(eocd + 12, true);
  const cdOffset = dv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff || cdOffset + cdSize > bytes.length) return null;
  if (count > MAX_ENTRIES) throw tooLarge(`the archive has ${count} entries; at most ${MAX_ENTRIES} are accepted`);

  const entries: ZipEntry[] = [];
  let p = cdOffset;
  const decoder = new TextDecoder();
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || dv.getUint32(p, true) !== CENTRAL_SIG) return null;
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    if (p + 46 + nameLen > bytes.length) return null;
    entries.push({
      method: dv.getUint16(p + 10, true),
      compressedSize: dv.getUint32(p + 20, true),
      uncompressedSize: dv.getUint32(p + 24, true),
      localHeaderOffset: dv.getUint32(p + 42, true),
      name: decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen)),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/**
 * Refuses an archive whose contents would inflate beyond `maxDecompressedBytes`. Two passes: the declared sizes
 * (cheap, catches honest bombs at once), then real inflation of every entry with zlib's output cap, because declared
 * sizes are attacker-controlled. The second pass is bounded by the same limit, so it costs at most what parsing
 * would. Afterwards mammoth may read the archive: it can only produce what we already inflated.
 */
export function assertZipWithinLimits(bytes: Uint8Array, filename: string, limits: ParseLimits): ZipEntry[] {
  const entries = readZipEntries(bytes);
  if (!entries) throw unprocessable(`"${filename}" is not a readable zip archive (it may be truncated or corrupt)`);
  const limitText = `the limit is ${formatBytes(limits.maxDecompressedBytes)} (${LimitEnv.maxDecompressedBytes})`;
  const declared = entries.reduce((sum, e) => sum + e.uncompressedSize, 0);
  if (declared > limits.maxDecompressedBytes) {
    throw tooLarge(`"${filename}" would unpack to ${formatBytes(declared)}; ${limitText}`);
  }

  const dv = view(bytes);
  let actual = 0;
  for (const e of entries) {
    const h = e.localHeaderOffset;
    if (h + 30 > bytes.length || dv.getUint32(h, true) !== LOCAL_SIG) {
      throw unprocessable(`"${filename}" is a corrupt zip archive (bad local header for ${e.name})`);
    }
    const start = h + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
    const data = bytes.subarray(start, start + e.compressedSize);
    const remaining = limits.maxDecompressedBytes - actual;
    let size: number;
    if (e.method === 0) {
      size = data.length;
    } else if (e.method === 8) {
      try {
        // One byte over the remaining budget is enough to know the budget is exceeded.
        size = inflateRawSync(data, { maxOutputLength: Math.max(1, remaining + 1) }).length;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
          throw tooLarge(`"${filename}" unpacks to more than ${formatBytes(limits.maxDecompressedBytes)}; ${limitText}`);
        }
        throw unprocessable(`"${filename}" is a corrupt zip archive (${e.name} does not inflate)`, err);
      }
    } else {
      throw unprocessable(`"${filename}" uses zip compression method ${e.method}, which is not supported`);
    }
    if (size > e.uncompressedSize) {
      throw unprocessable(`"${filename}" is a corrupt zip archive (${e.name} is larger than its header says)`);
    }
    actual += size;
    if (actual > limits.maxDecompressedBytes) {
      throw tooLarge(`"${filename}" unpacks to more than ${formatBytes(limits.maxDecompressedBytes)}; ${limitText}`);
    }
  }
  return entries;
}
