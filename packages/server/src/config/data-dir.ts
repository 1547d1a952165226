/**
 * The layout of a certfleet data dir. Everything a node needs to start is
 * here; `init` writes it and `serve` reads it.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CertfleetError } from '../errors.js';

export const DEFAULT_DATA_DIR = './certfleet-data';

export interface DataDir {
  readonly root: string;
  /** The embedded SQLite database (the default store). */
  readonly database: string;
  /** 32-byte key-encryption key for CA keys when CERTFLEET_PASSPHRASE is not set (mode 0600). */
  readonly masterKey: string;
  /** TLS certificate chain (leaf, then intermediates) and key of the API and MQTT listeners. */
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** The root CA devices trust. */
  readonly caFile: string;
  /** Where the CLI finds the server: { url, token, caFile } (mode 0600). */
  readonly cliJson: string;
  /** Ports chosen by `serve`: { api, mqtt, http }. */
  readonly portsJson: string;
  /** Settings fixed at init: { database }. */
  readonly configJson: string;
}

export function dataDir(dir: string = DEFAULT_DATA_DIR): DataDir {
  const root = resolve(dir);
  return {
    root,
    database: join(root, 'certfleet.db'),
    masterKey: join(root, 'master.key'),
    tlsCert: join(root, 'tls', 'server.pem'),
    tlsKey: join(root, 'tls', 'server-key.pem'),
    caFile: join(root, 'ca.pem'),
    cliJson: join(root, 'cli.json'),
    portsJson: join(root, 'ports.json'),
    configJson: join(root, 'config.json'),
  };
}

export interface NodeConfig {
  /** Database URL: a SQLite path or postgres://… */
  readonly database: string;
}

export function isInitialised(d: DataDir): boolean {
  return existsSync(d.configJson);
}

export function readNodeConfig(d: DataDir): NodeConfig {
  if (!isInitialised(d)) throw new CertfleetError('invalid-state', `${d.root} is not a certfleet data dir: run \`certfleet init --data ${d.root}\``);
  const raw = JSON.parse(readFileSync(d.configJson, 'utf8')) as Partial<NodeConfig>;
  if (typeof raw.database !== 'string') throw new CertfleetError('invalid-state', `${d.configJson} names no database`);
  return { database: raw.database };
}

/** Writes a file only its owner can read (keys, tokens), creating its folder 0700. */
export function writePrivate(path: string, data: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}
