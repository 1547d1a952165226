/** PEM (RFC 7468) encoding and strict decoding. */
import { PkiError } from './errors.js';

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Every PEM block in `text`, in order. Refuses text with no block or a damaged one. */
export function decodePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, begin, body, end] = m;
    if (begin !== end) throw new PkiError('malformed-pem', `PEM block BEGIN ${begin} ends with END ${end}`);
    const b64 = body!.replace(/\s+/g, '');
    if (b64.length === 0 || b64.length % 4 !== 0 || !BASE64.test(b64)) {
      throw new PkiError('malformed-pem', `PEM block ${begin} has invalid base64`);
    }
    blocks.push({ label: begin!, der: Buffer.from(b64, 'base64') });
  }
  if (blocks.length === 0) throw new PkiError('malformed-pem', 'no PEM block found');
  return blocks;
}

/** The single block with one of `labels`; fails if there is none or several. */
export function decodePem(text: string, ...labels: string[]): Buffer {
  const blocks = decodePemBlocks(text).filter((b) => labels.length === 0 || labels.includes(b.label));
  if (blocks.length !== 1) {
    throw new PkiError('malformed-pem', `expected one PEM block labelled ${labels.join(' or ')}, found ${blocks.length}`);
  }
  return blocks[0]!.der;
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
