/**
 * Where a process's CPU time went during chosen windows, from the
 * .cpuprofile that `node --cpu-prof` writes at exit. V8 stamps samples in
 * microseconds of the monotonic clock, the clock of process.hrtime() in
 * every process of the machine, so the windows the bench records with
 * hrtime select the samples taken under its load (and leave out set-up).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly children?: readonly number[];
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A window of the monotonic clock, in µs (process.hrtime.bigint() / 1000). */
export interface Window {
  readonly from: number;
  readonly to: number;
}

export const nowMicros = (): number => Number(process.hrtime.bigint() / 1000n);

export interface SelfTime {
  /** Samples inside the windows. */
  readonly samples: number;
  /** ms of samples inside the windows (interval-weighted), busy and idle. */
  readonly ms: number;
  /** ms of those the process was idle (waiting in epoll); shares below are of the rest, the busy time. */
  readonly idleMs: number;
  /** "share  name", largest first. */
  readonly areas: readonly string[];
  readonly functions: readonly string[];
  /** certfleet's own functions (packages/…/src) by inclusive time: the share of samples with that function on the stack. */
  readonly ownInclusive: readonly string[];
}

/** The kind of code a frame is, for the summary by area. */
function areaOf(functionName: string, url: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : `native: ${functionName}`;
  if (url.startsWith('node:')) return `node core ${url.replace(/^node:(internal\/)?/, '').split('/')[0]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  const ours = /packages\/([^/]+)\/src\/([^/]+)/.exec(url);
  return ours ? `certfleet ${ours[1]}/${ours[2]!.replace(/\.ts$/, '')}` : basename(url);
}

/** Self time by function and by area for the samples inside `windows`, from the profile file in `dir`. */
export function selfTime(dir: string, windows: readonly Window[], top = 16): SelfTime {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frameName = (n: ProfileNode): string => {
    const { functionName, url, lineNumber } = n.callFrame;
    // tsx hands V8 whole transpiled files without positions (line 0): then the file name alone.
    return url ? `${functionName || '(anonymous)'} ${basename(url)}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}` : functionName || '(anonymous native)';
  };
  const inclusive = new Map<string, number>();
  const perFn = new Map<string, number>();
  const perArea = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
  let t = profile.startTime;
  let samples = 0;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (!windows.some((w) => t >= w.from && t <= w.to)) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    // The interval to the next sample is the time this one stands for.
    const us = profile.timeDeltas[i + 1] ?? delta;
    const { functionName, url } = node.callFrame;
    samples++;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    add(perFn, frameName(node), us);
    add(perArea, areaOf(functionName, url), us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!;
      if (!/\/packages\/[^/]+\/src\//.test(frame.callFrame.url)) continue;
      const name = frameName(frame);
      if (!seen.has(name)) add(inclusive, name, us);
      seen.add(name);
    }
  }
  const sorted = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => `${`${((us / total) * 100).toFixed(1)}%`.padStart(6)}  ${name}`);
  return { samples, ms: (total + idle) / 1000, idleMs: idle / 1000, areas: sorted(perArea), functions: sorted(perFn), ownInclusive: sorted(inclusive) };
}
