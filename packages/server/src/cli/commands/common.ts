import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { CertfleetError } from '../../errors.js';
import { api, clientConfig, type ClientConfig } from '../client.js';

/** Options every server-talking command has. */
export const withServer = (c: Command): Command => c.option('--data <dir>', 'data dir whose cli.json names the server', './certfleet-data').option('--json', 'print JSON');

export const server = (o: { data?: string }): ClientConfig => clientConfig(o.data);

export const print = (json: boolean | undefined, value: unknown, human: () => string): void => {
  console.log(json ? JSON.stringify(value, null, 2) : human());
};

/** A path segment taken from the command line. */
export const seg = (s: string | number): string => encodeURIComponent(String(s));

/** Every item of a paged list route, following `next` cursors (1000 per page, the server's maximum). */
export async function listAll<T>(cfg: ClientConfig, path: string, query: Record<string, string> = {}): Promise<T[]> {
  const q = new URLSearchParams({ ...query, limit: '1000' });
  const items: T[] = [];
  let next: string | undefined;
  do {
    if (next) q.set('cursor', next);
    const page = await api<{ items: T[]; next?: string }>(cfg, 'GET', `${path}?${q}`);
    items.push(...page.items);
    next = page.next;
  } while (next);
  return items;
}

/** `--attr key=value`, repeatable, into an object. */
export function attr(v: string, acc: Record<string, string>): Record<string, string> {
  const eq = v.indexOf('=');
  if (eq < 1) throw new InvalidArgumentError(`wants key=value, got ${v}`);
  return { ...acc, [v.slice(0, eq)]: v.slice(eq + 1) };
}

/** A positive whole number argument. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`wants a whole number of at least 1, got ${v}`);
  return n;
}

/** Labelled lines with the values aligned: `label  value`. */
export function fields(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`.trimEnd()).join('\n');
}

/**
 * The JSON object in FILE (`-`: stdin), refused here, before anything is
 * sent, when it cannot be read or is not a JSON object; `shape` names what it should look like.
 */
export function readJsonObject(file: string, shape: string): Record<string, unknown> {
  const where = file === '-' ? 'stdin' : file;
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CertfleetError('bad-request', `cannot read ${where}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CertfleetError('bad-request', `${where} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new CertfleetError('bad-request', `${where} must hold a JSON object ${shape}`);
  return doc as Record<string, unknown>;
}
