#!/usr/bin/env node
// The certfleet-agent command. Sources are TypeScript run through tsx's loader, so an
// `npm install` is all a device or gateway needs (no build step to forget).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
