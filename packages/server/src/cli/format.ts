/** Small helpers for command output and option parsing. */
import { CertfleetError } from '../errors.js';

/** `30d`, `12h`, `2w`, `90` (days) → days. */
export function parseDays(s: string): number {
  const m = /^(\d+)\s*([dhw]?)$/i.exec(s.trim());
  if (!m) throw new CertfleetError('bad-request', `"${s}" is not a duration like 30d, 2w or 12h`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'd').toLowerCase();
  return unit === 'w' ? n * 7 : unit === 'h' ? Math.ceil(n / 24) : n;
}

/** A plain table: columns sized to their widest cell. */
export function table<T extends object>(rows: readonly T[], columns: readonly string[]): string {
  const cells = rows.map((r) => columns.map((c) => String((r as Record<string, unknown>)[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: readonly string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}
