// posta-nodelay end to end: every inbound socket gets TCP_NODELAY, on the SMTP and submission ports (Haraka's
// wrapper, whose own setNoDelay does nothing) and on the SMTPS port (a TLS socket of Node's, without the wrapper).
// Without it Nagle holds a small reply until the client's delayed ACK: about 44 ms per message (reference/haraka.md).
import { strict as assert } from 'node:assert'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { startHaraka, type HarakaNode } from '../testkit/haraka'
import { testRedis, type TestRedis } from '../testkit/redis'
import { SmtpClient } from '../testkit/smtp-client'

// Records every setNoDelay call on a socket, then, after every other connect_init hook (priority 100), logs what
// the connection's socket was left with.
const PROBE = `const net = require('net')
const proto = net.Socket.prototype
if (!proto.__probe) {
  const set = proto.setNoDelay
  proto.setNoDelay = function (on) { this.__probe_nodelay = on !== false; return set.apply(this, arguments) }
  proto.__probe = true
}
exports.register = function () { this.register_hook('connect_init', 'probe', 100) }
exports.probe = function (next, connection) {
  const s = connection.client.targetsocket || connection.client
  connection.loginfo(this, 'nodelay probe', { port: connection.local.port, nodelay: s.__probe_nodelay === true })
  next()
}
`

describe('posta-nodelay: TCP_NODELAY on every inbound socket', function () {
  this.timeout(60000)
  let redis: TestRedis
  let haraka: HarakaNode

  before(async () => {
    redis = await testRedis()
    // the project's list without the monitor (no DNS in tests), and the probe last
    const plugins = fs.readFileSync(path.join(__dirname, '..', 'config', 'plugins'), 'utf8').replace(/^posta-monitor$/m, '# posta-monitor')
    haraka = await startHaraka({ redisUrl: redis.url, overrides: { plugins: `${plugins.trimEnd()}\nnodelay_probe\n` }, extraPlugins: { nodelay_probe: PROBE } })
  })
  after(async () => {
    await haraka?.stop()
    await redis?.close()
  })

  for (const port of ['smtp', 'submission', 'smtps'] as const) {
    it(`sets it on the ${port} port`, async () => {
      const p = { smtp: haraka.smtpPort, submission: haraka.submissionPort, smtps: haraka.smtpsPort }[port]
      const c = await SmtpClient.connect({ port: p, tls: port === 'smtps' })
      try {
        const line = await haraka.waitForLog(new RegExp(`nodelay probe port=${p} nodelay=(true|false)`))
        assert.match(line[0], /nodelay=true/)
      } finally {
        await c.close()
      }
    })
  }
})
