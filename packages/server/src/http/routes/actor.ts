/** The audit actor of an API request: the token that authenticated it. */
import type { FastifyRequest } from 'fastify';
import { CertfleetError } from '../../errors.js';
import { tokenActor, type Actor } from '../../registry/actor.js';

export function actorOf(req: FastifyRequest): Actor {
  if (!req.token) throw new CertfleetError('unauthorized', 'a valid bearer token is required');
  return tokenActor(req.token.id);
}
