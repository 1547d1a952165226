/** certfleet batch … */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { KEY_ALGORITHMS, isKeyAlgorithm } from '@certfleet/pki';
import { DEFAULT_CHUNK, runBatch, type BatchSummary } from '../batch/run.js';
import { fields, positiveInt, print, server, withServer } from './common.js';

interface CreateOpts {
  data: string;
  json?: boolean;
  count?: number;
  out: string;
  prefix: string;
  start: number;
  csrDir?: string;
  concurrency: number;
  chunkSize: number;
  threads?: number;
  keyAlgorithm: string;
  profile?: string;
  days?: number;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`wants a whole number of at least 0, got ${v}`);
  return n;
}

/** A progress bar on a terminal, a line every 2 s otherwise (logs, CI). */
function progress(): { update: (done: number, total: number) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ stream: process.stderr, format: 'batch [{bar}] {value}/{total} {percentage}% | {rate}/s | eta {eta_formatted}', hideCursor: true }, Presets.shades_classic);
    const began = Date.now();
    let started = false;
    return {
      update: (done, total) => {
        if (!started) {
          bar.start(total, done, { rate: '0' });
          started = true;
        } else bar.update(done, { rate: (done / Math.max(0.001, (Date.now() - began) / 1000)).toFixed(0) });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update: (done, total) => {
      if (Date.now() - last >= 2000 || done === total) {
        last = Date.now();
        process.stderr.write(`batch: ${done}/${total}\n`);
      }
    },
    stop: () => undefined,
  };
}

const human = (s: BatchSummary): string =>
  fields([
    ['devices', String(s.total)],
    ['issued', String(s.issued)],
    ['reused', `${s.reused} (signed before an interruption)`],
    ['skipped', `${s.skipped} (already done)`],
    ['failed', s.failed.length ? `${s.failed.length}: ${s.failed.slice(0, 5).map((f) => `${f.thing} (${f.error})`).join('; ')}` : '0'],
    ['time', `${s.seconds.toFixed(1)} s, ${s.devicesPerSecond} devices/s`],
    ['manifest', `${s.manifest.json}\n${' '.repeat(10)}${s.manifest.csv}`],
  ]);

export function batchCommands(program: Command): void {
  const batch = program.command('batch').description('manufacturing batches of device identities');
  withServer(batch.command('create').description('make N device identities (key, certificate, chain) or sign the CSRs of a directory; resumable, writes a manifest'))
    .requiredOption('--out <dir>', 'output directory: one folder per device, manifest.json, manifest.csv')
    .option('--count <n>', 'number of devices whose keys are generated here', positiveInt)
    .option('--csr-dir <dir>', 'sign every *.csr / *.pem in this directory instead (thing named after the file)')
    .option('--prefix <prefix>', 'thing name prefix: PREFIX-0001…', 'device')
    .option('--start <n>', 'first index', nonNegativeInt, 1)
    .option('--concurrency <n>', 'batch requests in flight', positiveInt, 2)
    .option('--chunk-size <n>', 'devices per batch request (at most 1000)', positiveInt, DEFAULT_CHUNK)
    .option('--threads <n>', 'worker threads for keys and files (0: none; default one per core)', nonNegativeInt)
    .addOption(new Option('--key-algorithm <alg>', 'device key algorithm').choices([...KEY_ALGORITHMS]).default('ec-p256'))
    .option('--profile <profile>', 'certificate profile (device, server)')
    .option('--days <n>', 'validity in days', positiveInt)
    .action(async (o: CreateOpts) => {
      if ((o.count === undefined) === (o.csrDir === undefined)) throw new InvalidArgumentError('give one of --count N or --csr-dir DIR');
      const alg = o.keyAlgorithm;
      const bar = progress();
      let summary: BatchSummary;
      try {
        summary = await runBatch(server(o), {
          out: o.out,
          prefix: o.prefix,
          start: o.start,
          concurrency: o.concurrency,
          chunkSize: o.chunkSize,
          ...(o.threads !== undefined ? { threads: o.threads } : {}),
          onProgress: bar.update,
          ...(o.count !== undefined ? { count: o.count } : {}),
          ...(o.csrDir !== undefined ? { csrDir: o.csrDir } : {}),
          ...(isKeyAlgorithm(alg) ? { keyAlgorithm: alg } : {}),
          ...(o.profile ? { profile: o.profile } : {}),
          ...(o.days ? { validityDays: o.days } : {}),
        });
      } finally {
        bar.stop();
      }
      print(o.json, summary, () => human(summary));
      if (summary.failed.length) process.exitCode = 1;
    });
}
