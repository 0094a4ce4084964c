// posta domain rotate-key | service-key: DKIM key rotation and the service's own key (docs/dkim.md).
import { advanceRotation, createDomainKey, dkimRecords, rotateKey, type DkimRecord } from '../../lib/dkim'
import { makeResolver } from '../../lib/dnsbl'
import { InputError, NotFoundError } from '../../lib/errors'
import { requireDomain } from '../../lib/domains'
import { print, table, type Ctx, type Command } from '../util'

function recordsTable(rs: DkimRecord[]): string {
  return table([['STATE', 'SELECTOR', 'TXT NAME', 'VALUE'], ...rs.map((r) => [r.state + (r.until ? ` until ${r.until}` : ''), r.selector, r.name, r.value])])
}

/**
 * Starts a rotation, or, when one is waiting, looks its new record up and switches once it is there. The signing
 * never changes before the new record is seen in DNS.
 */
async function rotate(ctx: Ctx, domain: string, what: string) {
  const resolver = makeResolver(ctx.settings.resolvers, 2000)
  const before = await dkimRecords(ctx.redis, domain)
  if (!before.some((r) => r.state === 'active')) throw new NotFoundError(`${what} has no DKIM key to rotate`)
  let step: 'started' | 'waiting' | 'switched'
  let selector: string
  if (!before.some((r) => r.state === 'pending')) {
    selector = (await rotateKey(ctx.redis, domain)).selector
    step = 'started'
  } else {
    const r = await advanceRotation(ctx.redis, domain, resolver)
    step = r.switched ? 'switched' : 'waiting'
    selector = r.switched ? r.switched.to : r.pending!
  }
  const records = await dkimRecords(ctx.redis, domain)
  const pending = records.find((r) => r.state === 'pending')
  const next = {
    started: `new key ${selector} made. Publish TXT ${pending?.name} "${pending?.value}"; mail stays signed with the current key until the record is seen (posta domain check, or the relay itself within a minute), then switches`,
    waiting: `${selector} waits for its record: publish TXT ${pending?.name} "${pending?.value}" (DNS changes can take a while to show)`,
    switched: `switched to ${selector}: its record is in DNS. Keep the retiring record published until the date shown`,
  }[step]
  print(ctx, { domain, step, selector, records }, () => `${next}\n\n${recordsTable(records)}`)
}

export const commands: Record<string, Command> = {
  'domain rotate-key': {
    usage: 'posta domain rotate-key <slug> <domain>',
    summary: "rotate a sender domain's DKIM key: a new selector, signed with once its record is seen in DNS (run again to check)",
    args: 2,
    async run(ctx) {
      const d = await requireDomain(ctx.redis, ctx.settings, ctx.args[0], ctx.args[1])
      if (d.kind === 'service') {
        throw new InputError(`${d.domain} is signed with the service's key for ${ctx.settings.serviceDomain}: rotate that one with "posta domain service-key --rotate"`)
      }
      await rotate(ctx, d.domain, d.domain)
    },
  },
  'domain service-key': {
    usage: 'posta domain service-key [--rotate]',
    summary: "the DKIM record(s) of the service domain, which signs every tenant's <slug>.<service domain> mail (made if missing)",
    options: { rotate: { type: 'boolean', help: 'rotate the service key (run again to check DNS and switch)' } },
    args: 0,
    async run(ctx) {
      const domain = ctx.settings.serviceDomain
      if (ctx.opts.rotate) return rotate(ctx, domain, `the service domain ${domain}`)
      const made = await createDomainKey(ctx.redis, domain)
      const records = await dkimRecords(ctx.redis, domain)
      print(ctx, { domain, created: made.created, records }, () => `${made.created ? 'key made. ' : ''}Publish in the ${domain} zone:\n\n${recordsTable(records)}`)
    },
  },
}
