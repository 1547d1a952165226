import type { Command } from 'commander';
import { clientConfig, type ClientConfig } from '../client.js';

/** Options every server-talking command has. */
export const withServer = (c: Command): Command => c.option('--data <dir>', 'data dir whose cli.json names the server', './certfleet-data').option('--json', 'print JSON');

export const server = (o: { data?: string }): ClientConfig => clientConfig(o.data);

export const print = (json: boolean | undefined, value: unknown, human: () => string): void => {
  console.log(json ? JSON.stringify(value, null, 2) : human());
};
