/**
 * Bearer-token authentication for /api/v1: no request reaches a handler
 * without a valid token (401), nor without one of the route's scopes (403).
 * A route declares its scopes in `config.scopes`; a route without them is
 * refused, so forgetting to declare one fails closed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CertfleetError } from '../errors.js';
import { allows, type Scope, type Tokens } from '../registry/tokens.js';
import type { TokenRecord } from '../store/index.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Scopes any of which lets a token call the route; 'public' for unauthenticated routes. */
    scopes?: readonly Scope[] | 'public';
  }
  interface FastifyRequest {
    token?: TokenRecord;
  }
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m?.[1];
}

export function registerAuth(app: FastifyInstance, tokens: Tokens): void {
  app.addHook('onRequest', async (req) => {
    const scopes = req.routeOptions.config?.scopes;
    if (scopes === 'public') return;
    // Unknown routes still need a token: a 404 must not tell strangers what exists.
    const token = await tokens.authenticate(bearer(req));
    req.token = token;
    if (!req.routeOptions.url) return;
    if (!scopes || !allows(token.scopes, scopes)) {
      throw new CertfleetError('forbidden', `this token's scopes (${token.scopes.join(', ')}) do not allow ${req.method} ${req.routeOptions.url}`);
    }
  });
}
