/** @certfleet/server: run a node from code (tests, embedding) as `certfleet serve` does. */
export { startNode, type Ports, type RunningNode, type ServeOptions } from './node/serve.js';
export { initDataDir, type InitOptions, type InitResult } from './node/init.js';
export { openServices, type Services, type ServicesOptions } from './services.js';
export { CertfleetError, type ErrorCode } from './errors.js';
