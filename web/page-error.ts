// A refusal a page handler or middleware throws: app.tsx's error handler renders it as a page in the request's
// language (or as JSON `{"error": ...}` under /api), with its status.
import type { MessageKey } from './i18n'

export class PageError extends Error {
  constructor(readonly status: 400 | 403 | 404 | 429 | 503, readonly key: MessageKey) {
    super(key)
  }
}
