import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { deleteSavedEntry, listSavedBuyers, listSavedItems, saveBuyer, saveItem } from '../../app/saved-entries.js';
import type { HttpContext } from '../context.js';
import { ErrorView, IdParams, NoContent, SavedBuyerListView, SavedBuyerRequest, SavedBuyerView, SavedItemListView, SavedItemRequest, SavedItemView, SearchQuery } from '../schemas.js';
import { savedBuyerView, savedItemView } from '../views.js';

/** 常用购买方 and 常用商品 for auto-fill (R10). */
export function savedRoutes(app: FastifyInstance, { ports }: HttpContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 401: ErrorView, 403: ErrorView, 404: ErrorView, 422: ErrorView };

  api.get('/api/v1/saved-buyers', { schema: { summary: 'Saved buyers, newest first (常用购买方)', tags: ['auto-fill'], querystring: SearchQuery, response: { 200: SavedBuyerListView, ...errors } } },
    async (request) => ({ items: (await listSavedBuyers(ports, request.caller, request.query.q)).map(savedBuyerView) }));
  api.put('/api/v1/saved-buyers', { schema: { summary: 'Save a buyer (updates the one with the same name)', tags: ['auto-fill'], body: SavedBuyerRequest, response: { 200: SavedBuyerView, ...errors } } },
    async (request) => savedBuyerView(await saveBuyer(ports, request.caller, request.body)));
  api.delete('/api/v1/saved-buyers/:id', { schema: { summary: 'Forget a saved buyer', tags: ['auto-fill'], params: IdParams, response: { 204: NoContent, ...errors } } },
    async (request, reply) => {
      await deleteSavedEntry(ports, request.caller, 'buyer', request.params.id);
      return reply.code(204).send(null);
    });

  api.get('/api/v1/saved-items', { schema: { summary: 'Saved items with their tax codes (常用商品)', tags: ['auto-fill'], querystring: SearchQuery, response: { 200: SavedItemListView, ...errors } } },
    async (request) => ({ items: (await listSavedItems(ports, request.caller, request.query.q)).map(savedItemView) }));
  api.put('/api/v1/saved-items', { schema: { summary: 'Save an item (updates the one with the same name)', tags: ['auto-fill'], body: SavedItemRequest, response: { 200: SavedItemView, ...errors } } },
    async (request) => savedItemView(await saveItem(ports, request.caller, request.body)));
  api.delete('/api/v1/saved-items/:id', { schema: { summary: 'Forget a saved item', tags: ['auto-fill'], params: IdParams, response: { 204: NoContent, ...errors } } },
    async (request, reply) => {
      await deleteSavedEntry(ports, request.caller, 'item', request.params.id);
      return reply.code(204).send(null);
    });
}
