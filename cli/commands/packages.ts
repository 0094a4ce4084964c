// posta package ...
import { InputError } from '../../lib/errors'
import { listPackages, setPackage } from '../../lib/packages'
import { formatSize, parseSize } from '../../lib/size'
import { print, table, type Command } from '../util'

export const commands: Record<string, Command> = {
  'package set': {
    usage: 'posta package set <name> --traffic <size>',
    summary: 'create a package or change its monthly traffic (sizes: 500MB, 10GB, 10GiB; a plain number is bytes)',
    options: { traffic: { type: 'string', help: 'monthly traffic allowance' } },
    args: 1,
    async run(ctx) {
      if (typeof ctx.opts.traffic !== 'string') throw new InputError('missing --traffic <size> (e.g. --traffic 10GB)')
      const p = await setPackage(ctx.redis, ctx.args[0], parseSize(ctx.opts.traffic))
      print(ctx, p, () => `package ${p.name}: ${formatSize(p.traffic_bytes)} (${p.traffic_bytes} bytes) a month`)
    },
  },
  'package list': {
    usage: 'posta package list',
    summary: 'list packages',
    args: 0,
    async run(ctx) {
      const ps = await listPackages(ctx.redis)
      print(ctx, ps, () =>
        ps.length ? table([['PACKAGE', 'TRAFFIC', 'BYTES'], ...ps.map((p) => [p.name, formatSize(p.traffic_bytes), String(p.traffic_bytes)])]) : 'no packages yet: posta package set <name> --traffic <size>',
      )
    },
  },
}
