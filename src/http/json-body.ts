// Request bodies are JSON in UTF-8 and nothing else. Fastify's own JSON parser decodes the bytes
// as UTF-8 without checking them and ignores a declared charset, so a GBK file was issued with
// U+FFFD where its Chinese had been. This parser refuses a charset other than UTF-8 (1021, 415)
// and bytes that are not UTF-8 (1024, 400) before anything reads the body, and then parses the
// text with Fastify's own parser, so empty bodies, bad JSON and __proto__ keys are refused as before.
import type { FastifyInstance } from 'fastify';
import { Fault, faults } from '../domain/faults.js';
import { decodeUtf8 } from '../domain/text.js';

export function registerJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser(app.initialConfig.onProtoPoisoning ?? 'error', app.initialConfig.onConstructorPoisoning ?? 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes, done) => {
    const contentType = request.headers['content-type'] ?? '';
    const charset = declaredCharset(contentType);
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw new Fault(faults.CONTENT_TYPE_UNSUPPORTED, { type: contentType }, [{ field: 'content-type', issue: `charset ${charset}: only UTF-8 is accepted` }]);
    }
    parseJson(request, decodeUtf8(bytes as Buffer, 'body'), done);
  });
}

/** The charset parameter of a Content-Type header, lower case and unquoted; undefined when there is none. */
function declaredCharset(contentType: string): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType)?.[1]?.toLowerCase();
}
