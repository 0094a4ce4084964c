// posta operator ...: the accounts of the operator area (/admin). Each change is written to the audit log.
import { audit } from '../../lib/audit'
import { createOperator, listOperators, removeOperator, renewOperatorPassword, type OperatorCredentials } from '../../lib/operators'
import { print, systemUser, table, type Ctx, type Command } from '../util'

const showPassword = (c: OperatorCredentials) =>
  [
    `operator   ${c.name}`,
    `password   ${c.password}`,
    '',
    `The password is shown this once and stored only as a hash. Keep it now; "posta operator password ${c.name}" makes a new one.`,
  ].join('\n')

const auditCli = (ctx: Ctx, action: string, target: string) => audit(ctx.redis, { operator: `cli:${systemUser()}`, action, target })

export const commands: Record<string, Command> = {
  'operator create': {
    usage: 'posta operator create <name>',
    summary: 'create an operator account for the operator area (/admin); prints its password once',
    args: 1,
    async run(ctx) {
      const c = await createOperator(ctx.redis, ctx.args[0])
      await auditCli(ctx, 'operator create', c.name)
      print(ctx, c, () => showPassword(c))
    },
  },
  'operator list': {
    usage: 'posta operator list',
    summary: 'list operator accounts (never their passwords)',
    args: 0,
    async run(ctx) {
      const l = await listOperators(ctx.redis)
      print(ctx, l, () =>
        l.length ? table([['OPERATOR', 'CREATED', 'PASSWORD CHANGED'], ...l.map((o) => [o.name, o.created_at, o.password_changed_at])]) : 'no operators yet: posta operator create <name>',
      )
    },
  },
  'operator remove': {
    usage: 'posta operator remove <name>',
    summary: 'remove an operator account; their panel sessions end',
    args: 1,
    async run(ctx) {
      await removeOperator(ctx.redis, ctx.args[0])
      await auditCli(ctx, 'operator remove', ctx.args[0])
      print(ctx, { removed: ctx.args[0] }, () => `operator ${ctx.args[0]} removed`)
    },
  },
  'operator password': {
    usage: 'posta operator password <name>',
    summary: 'give an operator a new password (printed once); their panel sessions end',
    args: 1,
    async run(ctx) {
      const c = await renewOperatorPassword(ctx.redis, ctx.args[0])
      await auditCli(ctx, 'operator password', c.name)
      print(ctx, c, () => showPassword(c))
    },
  },
}
