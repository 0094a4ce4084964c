// posta domain ...: a tenant's sender domains, their DNS records and checks (lib/domains.ts, lib/dns-check.ts).
import { makeResolver } from '../../lib/dnsbl'
import { checkDomainRecords, domainRecords, type PublishRecord, type RecordCheck } from '../../lib/dns-check'
import { addDomain, listDomains, removeDomain, verifyDomain } from '../../lib/domains'
import type { Settings } from '../../lib/settings'
import { print, table, type Command } from '../util'

/** The service's one resolver factory, fed POSTA_RESOLVERS (like `posta ip add` and the monitor). */
const resolver = (s: Settings) => makeResolver(s.resolvers, 3000)

function showRecord(r: PublishRecord): string {
  return [`${r.purpose.toUpperCase().padEnd(12)} ${r.type} ${r.name}`, `             "${r.value}"`, `             ${r.note}`].join('\n')
}

function showCheck(c: RecordCheck): string {
  const lines = [`${c.state.toUpperCase().padEnd(8)} ${c.purpose.padEnd(12)} ${c.type} ${c.name}`]
  if (c.state !== 'right' && c.found.length) lines.push(`         found: ${c.found.map((v) => `"${v}"`).join(', ')}`)
  if (c.fix) lines.push(`         ${c.fix}`)
  return lines.join('\n')
}

export const commands: Record<string, Command> = {
  'domain add': {
    usage: 'posta domain add <slug> <domain>',
    summary: 'add a sender domain to a tenant (pending): prints the TXT record that proves it is theirs, then "posta domain verify"',
    args: 2,
    async run(ctx) {
      const [slug, input] = ctx.args
      const { entry, created } = await addDomain(ctx.redis, ctx.settings, slug, input)
      const r = entry.verification!
      print(ctx, { ...entry, created }, () => [
        created ? `added ${entry.domain} to ${slug} (pending)` : `${entry.domain} was added to ${slug} before (${entry.status}); its record is unchanged`,
        '',
        'Publish this TXT record, then run "posta domain verify ' + `${slug} ${entry.domain}":`,
        `  name   ${r.name}`,
        `  value  ${r.value}`,
        '',
        `Every record to publish (DKIM, SPF, DMARC too): posta domain records ${slug} ${entry.domain}`,
      ].join('\n'))
    },
  },
  'domain verify': {
    usage: 'posta domain verify <slug> <domain>',
    summary: 'look the verification TXT record up (POSTA_RESOLVERS) and mark the domain verified when it is right; exit status 1 when it is not',
    args: 2,
    async run(ctx) {
      const v = await verifyDomain(ctx.redis, ctx.settings, ctx.args[0], ctx.args[1], resolver(ctx.settings))
      print(ctx, v, () => `${v.state.toUpperCase()}: ${v.message}`)
      return v.state === 'right' ? 0 : 1
    },
  },
  'domain list': {
    usage: 'posta domain list <slug>',
    summary: "a tenant's sender domains: its own <slug>.<service domain>, and the added ones (pending or verified)",
    args: 1,
    async run(ctx) {
      const ds = await listDomains(ctx.redis, ctx.settings, ctx.args[0])
      print(ctx, ds, () => table([['DOMAIN', 'STATUS', 'KIND', 'ADDED', 'VERIFIED'], ...ds.map((d) => [d.domain, d.status, d.kind, d.added_at?.slice(0, 10) ?? '-', d.verified_at?.slice(0, 10) ?? '-'])]))
    },
  },
  'domain remove': {
    usage: 'posta domain remove <slug> <domain>',
    summary: 'remove a sender domain from a tenant: mail from it is refused from the next MAIL FROM on',
    args: 2,
    async run(ctx) {
      const d = await removeDomain(ctx.redis, ctx.settings, ctx.args[0], ctx.args[1])
      print(ctx, { removed: d.domain, tenant: ctx.args[0] }, () => `removed ${d.domain} from ${ctx.args[0]}`)
    },
  },
  'domain records': {
    usage: 'posta domain records <slug> <domain>',
    summary: 'every DNS record to publish for a sender domain: verification TXT, DKIM TXT, SPF include:, a DMARC suggestion',
    args: 2,
    async run(ctx) {
      const { domain, records } = await domainRecords(ctx.redis, ctx.settings, ctx.args[0], ctx.args[1])
      print(ctx, { domain: domain.domain, status: domain.status, records }, () => [`${domain.domain} (${domain.status}): publish these records`, '', ...records.map(showRecord)].join('\n\n'))
    },
  },
  'domain check': {
    usage: 'posta domain check <slug> <domain>',
    summary: 'look every record up (POSTA_RESOLVERS) and say, record by record, right / missing / wrong and what to change; exit status 1 unless all are right',
    args: 2,
    async run(ctx) {
      const { domain, records: checks, allRight } = await checkDomainRecords(ctx.redis, ctx.settings, ctx.args[0], ctx.args[1], resolver(ctx.settings))
      print(ctx, { domain: domain.domain, status: domain.status, all_right: allRight, records: checks }, () => [
        `${domain.domain} (${domain.status}): ${allRight ? 'every record is right' : `${checks.filter((c) => c.state !== 'right').length} of ${checks.length} records need a change`}`,
        ...checks.map(showCheck),
      ].join('\n'))
      return allRight ? 0 : 1
    },
  },
}
