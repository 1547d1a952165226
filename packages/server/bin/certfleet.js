#!/usr/bin/env node
// The certfleet command. Sources are TypeScript run through tsx's loader, so an
// `npm install` is all a fresh machine needs (no build step to forget).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
