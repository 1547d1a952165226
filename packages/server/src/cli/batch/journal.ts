/**
 * The batch journal: an append-only JSON-lines file with one line per
 * completed device, fsynced per device or per chunk, so a batch killed at any
 * point resumes where it stopped. The manifest (JSON and CSV) is rebuilt
 * from it.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic } from './files.js';

export interface JournalEntry {
  thing: string;
  certificateId: string;
  serial: string;
  fingerprintSha256: string;
  certPath: string;
  keyPath: string | null;
  chainPath: string;
  caPath: string;
}

export const JOURNAL = '.batch-journal.jsonl';

const isEntry = (v: unknown): v is JournalEntry => {
  const e = v as Partial<JournalEntry> | null;
  return !!e && typeof e.thing === 'string' && typeof e.certificateId === 'string' && typeof e.serial === 'string' && typeof e.certPath === 'string';
};

/** Completed devices by thing name; a torn last line (kill mid-append) is ignored. */
export function readJournal(dir: string): Map<string, JournalEntry> {
  const file = join(dir, JOURNAL);
  const done = new Map<string, JournalEntry>();
  if (!existsSync(file)) return done;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (isEntry(v)) done.set(v.thing, v);
  }
  return done;
}

/** Appends entries, one fsynced line each. */
export class Journal {
  private readonly fd: number;

  constructor(dir: string) {
    const file = join(dir, JOURNAL);
    const torn = existsSync(file) && !readFileSync(file, 'utf8').endsWith('\n') && readFileSync(file).length > 0;
    this.fd = openSync(file, 'a', 0o600);
    // A kill mid-append leaves a line without its newline: end it so the next entry starts clean.
    if (torn) writeSync(this.fd, '\n');
  }

  append(e: JournalEntry): void {
    writeSync(this.fd, `${JSON.stringify(e)}\n`);
    fsyncSync(this.fd);
  }

  /** Appends a chunk's entries with one write and one fsync; the chunk's files must be durable already. */
  appendMany(entries: readonly JournalEntry[]): void {
    if (entries.length === 0) return;
    writeSync(this.fd, entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

export const CSV_HEADER = ['thing', 'certificate_id', 'serial', 'fingerprint_sha256', 'cert_path', 'key_path', 'chain_path'] as const;

const csvField = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

export function manifestCsv(entries: readonly JournalEntry[]): string {
  const rows = entries.map((e) => [e.thing, e.certificateId, e.serial, e.fingerprintSha256, e.certPath, e.keyPath ?? '', e.chainPath].map(csvField).join(','));
  return `${[CSV_HEADER.join(','), ...rows].join('\n')}\n`;
}

/** Writes DIR/manifest.json and DIR/manifest.csv from the journal, sorted by thing; returns the entries. */
export function writeManifest(dir: string): JournalEntry[] {
  const entries = [...readJournal(dir).values()].sort((a, b) => (a.thing < b.thing ? -1 : a.thing > b.thing ? 1 : 0));
  writeAtomic(join(dir, 'manifest.json'), `${JSON.stringify({ count: entries.length, devices: entries }, null, 2)}\n`);
  writeAtomic(join(dir, 'manifest.csv'), manifestCsv(entries));
  return entries;
}
