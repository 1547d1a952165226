/** Keyset paging shared by list routes: `?limit=&cursor=` in, `{ items, next? }` out. */
import { MAX_PAGE_SIZE } from '../../store/index.js';

export const pageQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: 100 },
    cursor: { type: 'string', maxLength: 512 },
  },
} as const;

export const pageSchema = (item: object) =>
  ({
    type: 'object',
    properties: { items: { type: 'array', items: item }, next: { type: 'string', description: 'cursor of the next page; absent on the last' } },
  }) as const;
