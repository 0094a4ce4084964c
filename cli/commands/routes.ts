// posta route ...
import { deleteRoute, listRoutes, setRoute } from '../../lib/routes'
import { print, table, type Command } from '../util'

export const commands: Record<string, Command> = {
  'route set': {
    usage: 'posta route set <domain> <host>[:<port>]',
    summary: 'route mail for a domain to a fixed host (a leading dot, .example.net, covers its subdomains too)',
    args: 2,
    async run(ctx) {
      const r = await setRoute(ctx.redis, ctx.args[0], ctx.args[1])
      print(ctx, r, () => `route ${r.domain} -> ${r.host}:${r.port}`)
    },
  },
  'route list': {
    usage: 'posta route list',
    summary: 'list static routes',
    args: 0,
    async run(ctx) {
      const rs = await listRoutes(ctx.redis)
      print(ctx, rs, () => (rs.length ? table([['DOMAIN', 'HOST', 'PORT'], ...rs.map((r) => [r.domain, r.host, String(r.port)])]) : 'no routes: mail goes by MX lookup'))
    },
  },
  'route delete': {
    usage: 'posta route delete <domain>',
    summary: 'delete a static route',
    args: 1,
    async run(ctx) {
      await deleteRoute(ctx.redis, ctx.args[0])
      print(ctx, { deleted: ctx.args[0] }, () => `route ${ctx.args[0]} deleted`)
    },
  },
}
