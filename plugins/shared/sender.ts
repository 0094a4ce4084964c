// The sender policy's read of a tenant (its verified domains and package, lib/domains.ts senderContext), made once
// per transaction and shared by the plugins that need it: posta-domains at MAIL FROM and end of DATA, posta-dkim at
// the queue hand-off. A domain verified or removed counts from the next MAIL FROM.
import type { RedisClient as Redis } from '../../lib/redis'
import { senderContext, type SenderContext } from '../../lib/domains'
import type { Transaction } from './haraka'

const contexts = new WeakMap<Transaction, SenderContext>()

/** The context of this transaction's tenant: read at the first ask (one round trip), then kept with the transaction. */
export async function transactionContext(redis: Redis, tx: Transaction, slug: string): Promise<SenderContext> {
  let ctx = contexts.get(tx)
  if (!ctx || ctx.tenant !== slug) {
    ctx = await senderContext(redis, slug)
    contexts.set(tx, ctx)
  }
  return ctx
}
